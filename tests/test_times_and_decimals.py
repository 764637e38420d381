"""datetime, date and Decimal values (FORMAT.md §4.7, §4.8); the tests run with TZ=UTC."""
import datetime
import decimal

import pytest
from hypothesis import given, settings, strategies as st

from sharedbuffers.mapped_struct import Schema, mapped_date, mapped_datetime, mapped_decimal, mapped_object


def pack_bare(packer, value):
    buffer = bytearray(256)
    end = packer.pack_into(value, buffer, 0)
    return bytes(buffer[:end])


@pytest.mark.parametrize('value, encoded', [
    (datetime.datetime(2019, 3, 5, 11, 15, 24, 388001), 'a1 eb c5 a4 e5 c7 05 00'),
    (datetime.datetime(2019, 3, 5, 11, 15, 24, 388001, datetime.timezone(datetime.timedelta(hours=3))),
     'a1 eb c5 01 e3 c7 05 00'),
    (datetime.datetime(1960, 1, 1, 0, 0, 0, 1), '01 00 00 88 00 d3 fe ff'),
])
def test_datetimes_are_shifted_timestamps(value, encoded):
    assert pack_bare(mapped_datetime, value).hex(' ') == encoded


def test_an_aware_datetime_reads_back_naive_in_local_time():
    aware = datetime.datetime(2019, 3, 5, 11, 15, 24, 388001, datetime.timezone(datetime.timedelta(hours=3)))
    assert mapped_datetime.unpack_from(pack_bare(mapped_datetime, aware)) == datetime.datetime(2019, 3, 5, 8, 15, 24, 388001)


def test_dates_are_utc_midnight_seconds():
    assert pack_bare(mapped_date, datetime.date(2019, 3, 5)).hex(' ') == '00 bc 7d 5c 00 00 00 00'


@pytest.mark.parametrize('value, encoded', [
    ('38.872874', 'f4 ff ff ff ff ff ff ff 42 08 00 00 03 08 08 07 02 08 07 04 00 00 00 00'),
    ('-38.872874', 'f5 ff ff ff ff ff ff ff 42 08 00 00 03 08 08 07 02 08 07 04 00 00 00 00'),
    ('0', '00 00 00 00 00 00 00 00 42 01 00 00 00 00 00 00'),
    ('1E+10', '14 00 00 00 00 00 00 00 42 01 00 00 01 00 00 00'),
])
def test_decimals_are_exponent_sign_and_digits(value, encoded):
    data = pack_bare(mapped_decimal, decimal.Decimal(value))
    assert data.hex(' ') == encoded
    assert mapped_decimal.unpack_from(data).as_tuple() == decimal.Decimal(value).as_tuple()


@pytest.mark.parametrize('value', ['NaN', 'Infinity', '-Infinity', 'sNaN'])
def test_decimals_without_digits_raise_a_value_error_that_says_so(value):
    with pytest.raises(ValueError, match='NaN and infinities'):
        pack_bare(mapped_decimal, decimal.Decimal(value))


def test_a_stored_timestamp_out_of_the_datetime_range_is_a_value_error():
    import struct
    with pytest.raises(ValueError, match='out-of-range timestamp'):
        mapped_datetime.unpack_from(struct.pack('=q', (1 << 42) << 20))


def test_the_last_representable_second_round_trips():
    schema = Schema({'when': datetime.datetime})
    holder = type('Holder', (), {})()
    holder.when = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    assert schema.unpack_from(schema.pack(holder)).when == datetime.datetime(9999, 12, 31, 23, 59, 59)


def test_typed_slots_and_object_slots_agree():
    schema = Schema({'when': datetime.datetime, 'day': datetime.date, 'amount': decimal.Decimal, 'any': object})
    holder = type('Holder', (), {})()
    holder.when = datetime.datetime(2001, 2, 3, 4, 5, 6, 7)
    holder.day = datetime.date(1900, 1, 1)
    holder.amount = decimal.Decimal('-0.00')
    holder.any = holder.when
    proxy = schema.unpack_from(schema.pack(holder))
    assert (proxy.when, proxy.day, proxy.any) == (holder.when, holder.day, holder.when)
    assert proxy.amount.as_tuple() == holder.amount.as_tuple()


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30)))
def test_naive_datetimes_round_trip(value):
    buffer = bytearray(64)
    mapped_object.pack_into(value, buffer, 0)
    assert mapped_object.unpack_from(buffer, 0) == value


@settings(max_examples=150, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_finite_decimals_round_trip(value):
    buffer = bytearray(4096)
    mapped_object.pack_into(value, buffer, 0)
    assert mapped_object.unpack_from(buffer, 0).as_tuple() == value.as_tuple()


# -- timezone-aware slot types --------------------------------------------------------------

from sharedbuffers.mapped_struct import (  # noqa: E402
    mapped_datetime_local, mapped_datetime_tz, mapped_datetime_tz_local, mapped_datetime_utc)

PLUS_0330 = datetime.timezone(datetime.timedelta(hours=3, minutes=30))


def _round_trip(slot_type, value):
    schema = Schema({'when': slot_type})
    holder = type('Holder', (), {})()
    holder.when = value
    return schema, schema.unpack_from(schema.pack(holder)).when


def test_the_utc_variant_takes_naive_values_as_utc_and_reads_back_aware():
    _, value = _round_trip(mapped_datetime_utc, datetime.datetime(2020, 5, 6, 7, 8, 9, 10))
    assert value == datetime.datetime(2020, 5, 6, 7, 8, 9, 10, datetime.timezone.utc)
    assert value.utcoffset() == datetime.timedelta(0)


def test_the_local_variant_reads_back_in_the_local_zone():
    moment = datetime.datetime(2020, 5, 6, 7, 8, 9, tzinfo=PLUS_0330)
    _, value = _round_trip(mapped_datetime_local, moment)
    assert value == moment and value.tzinfo is not None


def test_the_tz_variants_keep_the_utc_offset_in_ten_bytes():
    moment = datetime.datetime(2020, 5, 6, 7, 8, 9, 123456, tzinfo=PLUS_0330)
    schema, value = _round_trip(mapped_datetime_tz, moment)
    assert value == moment and value.utcoffset() == datetime.timedelta(hours=3, minutes=30)
    holder = type('Holder', (), {})()
    holder.when = moment
    data = schema.pack(holder)
    assert data[16:26][-2:] == (210).to_bytes(2, 'little')       # +03:30 -> d2 00
    _, naive = _round_trip(mapped_datetime_tz_local, datetime.datetime(2020, 5, 6, 7, 8, 9))
    assert naive.utcoffset() is not None


def test_a_corrupt_utc_offset_is_a_value_error():
    import struct
    with pytest.raises(ValueError, match='UTC offset'):
        mapped_datetime_tz.unpack_from(struct.pack('=qh', 0, 5000))


def test_a_decimal_with_an_absurd_exponent_is_a_clean_value_error():
    import struct as _struct
    from sharedbuffers.mapped_struct import mapped_decimal
    buffer = bytearray(64)
    mapped_decimal.pack_into(decimal.Decimal("1.5"), buffer, 0)
    _struct.pack_into('<q', buffer, 0, 1 << 62)
    with pytest.raises(ValueError, match='corrupt'):
        mapped_decimal.unpack_from(bytes(buffer), 0)
