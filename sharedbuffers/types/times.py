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

__all__ = ['mapped_datetime', 'mapped_date', 'write_datetime', 'read_datetime', 'write_date', 'read_date',
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


def read_datetime(buffer, offset):
    """The naive local datetime stored at ``offset``."""
    if offset < 0 or offset + 8 > len(buffer):
        raise out_of_bounds('datetime', offset, 8, len(buffer))
    stamp = _int64.unpack_from(buffer, offset)[0]
    try:
        moment = datetime.datetime.fromtimestamp(stamp >> _MICROSECOND_BITS)
    except (OverflowError, OSError, ValueError):
        raise ValueError('datetime at offset %d holds an out-of-range timestamp %d' % (offset, stamp)) from None
    microsecond = stamp & 0xFFFFF
    if microsecond > 999999:
        raise ValueError('datetime at offset %d holds %d microseconds: corrupt' % (offset, microsecond))
    return moment.replace(microsecond=microsecond)


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
