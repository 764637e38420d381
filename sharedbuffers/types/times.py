"""datetime and date values (FORMAT.md §4.7).

    datetime (RTTI ``v``): int64 ``(unix_seconds << 20) + microsecond``
    date     (RTTI ``V``): int64 unix seconds of that day at 00:00 UTC (not shifted)

As in 1.x, a *naive* datetime is taken in the process's local time zone (``time.mktime``)
and read back naive in local time; an aware one is converted to UTC.  Round trips of naive
values are therefore stable within one time zone (the golden files were made with TZ=UTC).
Values whose timestamp does not fit (the 44 bits left for seconds) raise ValueError.
"""
import calendar
import datetime
import struct
import time

from .._facade import public
from ..buffers import out_of_bounds
from .base import VariableCodec

__all__ = ['mapped_datetime', 'mapped_date', 'mapped_datetime_utc', 'mapped_datetime_local', 'mapped_datetime_tz',
           'mapped_datetime_tz_local', 'write_datetime', 'read_datetime', 'write_date', 'read_date',
           'append_datetime', 'append_date']

_int64 = struct.Struct('=q')
_MICROSECOND_BITS = 20
_SECONDS_LIMIT = 1 << (63 - _MICROSECOND_BITS)
_EPOCH = datetime.datetime(1970, 1, 1)


def _remembered(value, context):
    entry = context.idmap.get(id(value))
    return entry[0] if entry is not None else None


def _append_int64(value, number, context):
    position = context.origin + len(context.out)
    context.idmap[id(value)] = (position, value)
    context.out += _int64.pack(number)
    return position


def datetime_timestamp(value):
    """The shifted 64-bit timestamp 1.x stores for a datetime."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        seconds = calendar.timegm(value.astimezone(datetime.timezone.utc).timetuple())
    else:
        try:
            seconds = int(time.mktime(value.timetuple()))
        except (OverflowError, ValueError) as error:
            raise ValueError('datetime %s cannot be stored: %s' % (value, error)) from None
    if not -_SECONDS_LIMIT <= seconds < _SECONDS_LIMIT:
        raise ValueError('datetime %s is out of the storable range' % (value,))
    return (seconds << _MICROSECOND_BITS) + value.microsecond


def append_datetime(value, context):
    """Append a datetime's payload unconditionally (it is remembered for later slots)."""
    if not isinstance(value, datetime.datetime):
        raise TypeError('expected datetime, got %s' % type(value).__name__)
    return _append_int64(value, datetime_timestamp(value), context)


def write_datetime(value, context):
    """Append a datetime as its shifted timestamp (shared by identity); return its position."""
    known = _remembered(value, context)
    return known if known is not None else append_datetime(value, context)


def _moment(stamp, zone, offset):
    """The datetime of a shifted timestamp: in ``zone``, or naive local time when zone is None."""
    microsecond = stamp & 0xFFFFF
    if microsecond > 999999:
        raise ValueError('datetime at offset %d holds %d microseconds: corrupt' % (offset, microsecond))
    try:
        moment = datetime.datetime.fromtimestamp(stamp >> _MICROSECOND_BITS, zone)
    except (OverflowError, OSError, ValueError):
        raise ValueError('datetime at offset %d holds an out-of-range timestamp %d' % (offset, stamp)) from None
    return moment.replace(microsecond=microsecond)


def read_datetime(buffer, offset):
    """The naive local datetime stored at ``offset``."""
    if offset < 0 or offset + 8 > len(buffer):
        raise out_of_bounds('datetime', offset, 8, len(buffer))
    return _moment(_int64.unpack_from(buffer, offset)[0], None, offset)


def append_date(value, context):
    """Append a date's payload unconditionally (it is remembered for later slots)."""
    if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
        raise TypeError('expected date, got %s' % type(value).__name__)
    return _append_int64(value, calendar.timegm(value.timetuple()), context)


def write_date(value, context):
    """Append a date as the unix seconds of its UTC midnight (shared by identity)."""
    known = _remembered(value, context)
    return known if known is not None else append_date(value, context)


def read_date(buffer, offset):
    """The date stored at ``offset``."""
    if offset < 0 or offset + 8 > len(buffer):
        raise out_of_bounds('date', offset, 8, len(buffer))
    seconds = _int64.unpack_from(buffer, offset)[0]
    try:
        return (_EPOCH + datetime.timedelta(seconds=seconds)).date()
    except OverflowError:
        raise ValueError('date at offset %d holds an out-of-range timestamp %d' % (offset, seconds)) from None


@public
class mapped_datetime(VariableCodec):
    """Packer of ``datetime`` values (RTTI code ``v``); naive values are local time, as in 1.x."""
    typecode = b'v'
    python_types = (datetime.datetime,)
    write = staticmethod(write_datetime)
    read = staticmethod(read_datetime)


@public
class mapped_date(VariableCodec):
    """Packer of ``date`` values (RTTI code ``V``)."""
    typecode = b'V'
    python_types = (datetime.date,)
    write = staticmethod(write_date)
    read = staticmethod(read_date)


# -- timezone-aware variants (slot types only: they have no RTTI code) -----------------------
#
# utc / local:       the same 8 bytes as mapped_datetime; a naive value is taken as UTC / local
#                    time, and values read back aware (UTC / the local zone).
# tz / tz_local:     10 bytes ``=qh``: the shifted timestamp, then the UTC offset in minutes;
#                    values read back with that fixed offset.  Naive values: UTC / local time.

_TIMESTAMP_AND_OFFSET = struct.Struct('=qh')


def _as_aware(value, naive_is_local):
    if not isinstance(value, datetime.datetime):
        raise TypeError('expected datetime, got %s' % type(value).__name__)
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    return value.astimezone() if naive_is_local else value.replace(tzinfo=datetime.timezone.utc)


def _aware_stamp(value):
    seconds = calendar.timegm(value.astimezone(datetime.timezone.utc).timetuple())
    if not -_SECONDS_LIMIT <= seconds < _SECONDS_LIMIT:
        raise ValueError('datetime %s is out of the storable range' % (value,))
    return (seconds << _MICROSECOND_BITS) + value.microsecond


def _from_stamp(stamp, zone, offset):
    """An aware datetime: in ``zone``, or in the local zone when zone is None."""
    moment = _moment(stamp, datetime.timezone.utc, offset)
    return moment.astimezone(zone) if zone is not None else moment.astimezone()


class _AwareDatetimeCodec(VariableCodec):
    """Shared behaviour of the aware variants; subclasses set the naive rule and the layout."""
    typecode = None
    python_types = (datetime.datetime,)
    naive_is_local = False
    with_offset = False
    read_zone = datetime.timezone.utc       # None: the local zone

    @classmethod
    def write(cls, value, context):
        key = (cls, id(value))              # 1.x tags these with their class in the idmap
        entry = context.idmap.get(key)
        if entry is not None:
            return entry[0]
        aware = _as_aware(value, cls.naive_is_local)
        position = context.origin + len(context.out)
        context.idmap[key] = (position, value)
        stamp = _aware_stamp(aware)
        if cls.with_offset:
            minutes = int(aware.utcoffset().total_seconds() // 60)
            context.out += _TIMESTAMP_AND_OFFSET.pack(stamp, minutes)
        else:
            context.out += _int64.pack(stamp)
        return position

    @classmethod
    def read(cls, buffer, offset):
        size = _TIMESTAMP_AND_OFFSET.size if cls.with_offset else 8
        if offset < 0 or offset + size > len(buffer):
            raise out_of_bounds('datetime', offset, size, len(buffer))
        if not cls.with_offset:
            return _from_stamp(_int64.unpack_from(buffer, offset)[0], cls.read_zone, offset)
        stamp, minutes = _TIMESTAMP_AND_OFFSET.unpack_from(buffer, offset)
        if not -24 * 60 < minutes < 24 * 60:
            raise ValueError('datetime at offset %d has a UTC offset of %d minutes: corrupt' % (offset, minutes))
        return _from_stamp(stamp, datetime.timezone(datetime.timedelta(minutes=minutes)), offset)


@public
class mapped_datetime_utc(_AwareDatetimeCodec):
    """Slot type: naive values are UTC; read back aware in UTC."""


@public
class mapped_datetime_local(_AwareDatetimeCodec):
    """Slot type: naive values are local time; read back aware in the local zone."""
    naive_is_local = True
    read_zone = None


@public
class mapped_datetime_tz(_AwareDatetimeCodec):
    """Slot type: keeps the UTC offset (10 bytes); naive values are UTC."""
    with_offset = True


@public
class mapped_datetime_tz_local(_AwareDatetimeCodec):
    """Slot type: keeps the UTC offset (10 bytes); naive values are local time."""
    with_offset = True
    naive_is_local = True
