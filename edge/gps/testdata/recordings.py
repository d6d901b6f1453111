#!/usr/bin/env python3
"""Writes the receiver recordings in this folder (see README.md).

Each recording follows one receiver's documented output: its talkers, its
sentence set and order, its field formats (decimals of the minutes, of the
seconds, empty fields), its start-up messages and its behaviour without a fix,
as the manuals named in README.md describe them. The vehicle drives a straight
line at a steady speed so that the numbers are easy to check by hand. This
script computes checksums and positions; it shares no code or assumption with
the Go decoder under test. Run it from this folder: python3 recordings.py
"""

import datetime
import math
import struct


def nmea(body):
    c = 0
    for ch in body:
        c ^= ord(ch)
    return "$%s*%02X\r\n" % (body, c)


def ubx(cls, mid, payload, good=True):
    body = bytes([cls, mid]) + struct.pack("<H", len(payload)) + payload
    a = b = 0
    for x in body:
        a = (a + x) & 0xFF
        b = (b + a) & 0xFF
    if not good:
        a ^= 0xFF
    return b"\xb5\x62" + body + bytes([a, b])


def dm(value, pos, neg, degdigits, decimals):
    """ddmm.mmmm text and hemisphere of a coordinate in degrees."""
    h = pos if value >= 0 else neg
    v = abs(value)
    d = int(v)
    m = round((v - d) * 60, decimals)
    if m >= 60:
        d, m = d + 1, 0.0
    return "%0*d%0*.*f" % (degdigits, d, decimals + 3, decimals, m), h


class Track:
    """A vehicle on a straight line: position after t seconds."""

    def __init__(self, lat, lon, speed, course):
        self.lat0, self.lon0, self.speed, self.course = lat, lon, speed, course

    def at(self, t):
        d = self.speed * t
        lat = self.lat0 + d * math.cos(math.radians(self.course)) / 111320.0
        lon = self.lon0 + d * math.sin(math.radians(self.course)) / (111320.0 * math.cos(math.radians(self.lat0)))
        return lat, lon


def gsa(fix, svs, pdop, hdop, vdop, system=None):
    """A GSA body: twelve satellite fields, the DOPs, NMEA 4.11's system ID."""
    f = ["GSA", "A", str(fix)] + (svs + [""] * 12)[:12] + [pdop, hdop, vdop]
    if system is not None:
        f.append(str(system))
    return ",".join(f)


def hms(t, decimals):
    s = "%02d%02d%02d" % (t.hour, t.minute, t.second)
    if decimals:
        s += ".%0*d" % (decimals, t.microsecond // 10 ** (6 - decimals))
    return s


def ddmmyy(t):
    return t.strftime("%d%m%y")


def knots(mps):
    return mps / (1852 / 3600)


def epochs(trk, t0, n, step, minute_decimals, second_decimals):
    """For each of n epochs: index, time, ddmm.m latitude and hemisphere,
    dddmm.m longitude and hemisphere, hhmmss time text."""
    for i in range(n):
        t = t0 + datetime.timedelta(seconds=step * i)
        lat, lon = trk.at(step * i)
        la, ns = dm(lat, "N", "S", 2, minute_decimals)
        lo, ew = dm(lon, "E", "W", 3, minute_decimals)
        yield i, t, la, ns, lo, ew, hms(t, second_decimals)


def write(name, chunks):
    with open(name, "wb") as f:
        for c in chunks:
            f.write(c.encode() if isinstance(c, str) else c)


# --- u-blox NEO-M8N, NMEA 4.0 (u-blox 8 / M8 Receiver Description, protocol
# specification, "NMEA Protocol"): GN talker for RMC VTG GGA GSA GLL, one GSA
# per constellation, GP/GL GSV; TXT at start-up; before the time is known the
# time fields are empty; UBX-NAV-PVT and UBX-ACK-ACK frames interleaved.
def ublox_m8():
    out = [nmea("GPTXT,01,01,02,u-blox ag - www.u-blox.com"), nmea("GNTXT,01,01,02,ANTSTATUS=OK")]
    trk = Track(47.285233, 8.565265, 13.9, 72.0)
    t0 = datetime.datetime(2021, 6, 14, 8, 35, 50)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 30, 1, 5, 2):
        if i < 2:  # no time yet
            out += [nmea("GNRMC,,V,,,,,,,,,,N"), nmea("GNVTG,,,,,,,,,N"), nmea("GNGGA,,,,,,0,00,99.99,,,,,,"),
                    nmea("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"), nmea("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"),
                    nmea("GPGSV,1,1,00"), nmea("GNGLL,,,,,,V,N")]
            continue
        lost = i < 5 or 19 <= i < 22  # acquiring; then a tunnel
        if lost:
            out += [nmea("GNRMC,%s,V,,,,,,,%s,,,N" % (hh, ddmmyy(t))), nmea("GNVTG,,,,,,,,,N"),
                    nmea("GNGGA,%s,,,,,0,00,99.99,,,,,," % hh),
                    nmea("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"), nmea("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"),
                    nmea("GPGSV,1,1,03,05,,,28,13,,,24,15,,,31"), nmea("GLGSV,1,1,01,65,,,22"),
                    nmea("GNGLL,,,,,%s,V,N" % hh)]
        else:
            two_d = i == 5
            dops = ("3.12", "2.31", "2.09") if two_d else ("1.71", "0.98", "1.40")
            kn = "%.3f" % knots(trk.speed)
            out += [nmea("GNRMC,%s,A,%s,%s,%s,%s,%s,%.2f,%s,,,A" % (hh, la, ns, lo, ew, kn, trk.course, ddmmyy(t))),
                    nmea("GNVTG,%.2f,T,,M,%s,N,%.3f,K,A" % (trk.course, kn, trk.speed * 3.6)),
                    nmea("GNGGA,%s,%s,%s,%s,%s,1,%02d,%.2f,%.1f,M,48.0,M,," % (hh, la, ns, lo, ew, 4 if two_d else 9, 2.31 if two_d else 0.98, 499.6 + 0.1 * i)),
                    nmea("GN" + gsa(2 if two_d else 3, ["05", "13", "15", "18"] + ([] if two_d else ["21", "24"]), *dops)),
                    nmea("GN" + gsa(2 if two_d else 3, [] if two_d else ["65", "66", "72"], *dops)),
                    nmea("GPGSV,2,1,07,05,62,281,41,13,47,092,38,15,33,151,43,18,22,197,36"),
                    nmea("GPGSV,2,2,07,21,18,045,33,24,71,320,44,29,05,012,"),
                    nmea("GLGSV,1,1,03,65,41,233,35,66,57,318,38,72,19,087,30"),
                    nmea("GNGLL,%s,%s,%s,%s,%s,A,A" % (la, ns, lo, ew, hh))]
        # UBX frames the receiver was also configured to send, between epochs.
        if i % 4 == 3:
            pvt = bytearray(92)
            pvt[0:4] = struct.pack("<I", (i * 1000) & 0xFFFFFFFF)
            pvt[10], pvt[11], pvt[20] = 0x24, 0x0A, 0x24  # '$' and LF inside the payload
            out.append(ubx(0x01, 0x07, bytes(pvt)))
        if i == 10:
            out.append(ubx(0x05, 0x01, b"\x06\x01"))
        if i == 14:
            out.append(ubx(0x01, 0x07, bytes(92), good=False))
    write("ublox_m8.nmea", out)


# --- SiRFstarIII (SiRF NMEA Reference Manual; GlobalSat BU-353 output at
# 4800 baud): GP talker, GGA GSA GSV RMC each second, times to the millisecond
# (.000), RMC without the FAA mode field, GGA reporting the DGPS station
# "0000". Cold start with quality 0 and status V, then a fix; a GGA lost to
# line noise (bad checksum), an RMC cut short, and one over-long line.
def sirf():
    out = []
    trk = Track(37.387458, -121.972360, 8.3, 309.6)
    t0 = datetime.datetime(2019, 11, 3, 16, 12, 27)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 25, 1, 4, 3):
        if i < 3:
            out += [nmea("GPGGA,%s,%s,%s,%s,%s,0,00,50.0,0.0,M,0.0,M,0.0,0000" % (hh, la, ns, lo, ew)),
                    nmea("GPGSA,A,1,,,,,,,,,,,,,50.0,50.0,50.0"),
                    nmea("GPGSV,1,1,02,07,79,048,,02,51,062,"),
                    nmea("GPRMC,%s,V,%s,%s,%s,%s,0.00,0.00,%s,," % (hh, la, ns, lo, ew, ddmmyy(t)))]
            continue
        gga = nmea("GPGGA,%s,%s,%s,%s,%s,1,07,1.0,%.1f,M,-34.2,M,,0000" % (hh, la, ns, lo, ew, 9.0 + 0.2 * i))
        if i == 9:  # one flipped bit on the line
            gga = gga.replace("GGA", "GGC", 1)
        rmc = nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,%.2f,%s,," % (hh, la, ns, lo, ew, knots(trk.speed), trk.course, ddmmyy(t)))
        if i == 14:  # the RMC is cut short by the next sentence; the epoch has no date of its own
            rmc = rmc[:30]
        out += [gga, nmea("GPGSA,A,3,07,02,26,27,09,04,15,,,,,,1.8,1.0,1.5"),
                nmea("GPGSV,2,1,07,07,79,048,42,02,51,062,43,26,36,256,42,27,27,138,42"),
                nmea("GPGSV,2,2,07,09,23,313,42,04,19,159,41,15,12,041,42"), rmc]
        if i == 20:
            out.append(nmea("GPTXT,01,01,02," + "X" * 120))
    write("sirf_star3.nmea", out)


# --- MediaTek MT3339 (GlobalTop PA6H datasheet, PMTK command packet manual):
# GGA GSA GSV RMC VTG at 5 Hz (PMTK220,200), PMTK start-up and ack messages,
# satellites count without leading zero, a 2D fix before the 3D one.
def mediatek():
    out = [nmea("PMTK011,MTKGPS"), nmea("PMTK010,001"), nmea("PMTK001,220,3")]
    trk = Track(23.118760, 120.274063, 22.2, 165.5)
    t0 = datetime.datetime(2022, 4, 26, 6, 49, 51)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 40, 0.2, 4, 3):
        if i < 4:
            out += [nmea("GPGGA,%s,,,,,0,0,,,M,,M,," % hh), nmea("GPGSA,A,1,,,,,,,,,,,,,,,"),
                    nmea("GPGSV,1,1,00"), nmea("GPRMC,%s,V,,,,,0.00,0.00,%s,,,N" % (hh, ddmmyy(t))),
                    nmea("GPVTG,0.00,T,,M,0.00,N,0.00,K,N")]
            continue
        two_d = i < 8
        out += [nmea("GPGGA,%s,%s,%s,%s,%s,1,%d,%.2f,%s,M,17.8,M,," % (hh, la, ns, lo, ew, 3 if two_d else 8, 2.95 if two_d else 0.95, "" if two_d else "39.9")),
                nmea("GP" + gsa(2 if two_d else 3, ["29", "21", "26"] if two_d else ["29", "21", "26", "15", "18", "09", "06", "10"],
                                *(("3.32", "2.95", "1.53") if two_d else ("2.32", "0.95", "2.11")))),
                nmea("GPGSV,3,1,09,29,36,029,42,21,46,314,43,26,44,020,43,15,21,321,39"),
                nmea("GPGSV,3,2,09,18,26,314,40,09,57,170,44,06,20,229,37,10,26,084,37"),
                nmea("GPGSV,3,3,09,07,,,26"),
                nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,%.2f,%s,,,A" % (hh, la, ns, lo, ew, knots(trk.speed), trk.course, ddmmyy(t))),
                nmea("GPVTG,%.2f,T,,M,%.2f,N,%.2f,K,A" % (trk.course, knots(trk.speed), trk.speed * 3.6))]
    write("mediatek_mt3339.nmea", out)


# --- Quectel L76-L (L76 series GNSS protocol specification): GPS + GLONASS +
# Galileo + BeiDou, GN talker for RMC VTG GGA GSA GLL, one GNGSA per system,
# GPGSV GLGSV GAGSV BDGSV, 9600 baud; the first epochs after power-up carry a
# time but no date in RMC and no fix.
def quectel():
    out = []
    trk = Track(31.230416, 121.473701, 16.7, 90.0)
    t0 = datetime.datetime(2023, 9, 2, 23, 59, 50)  # across midnight
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 22, 1, 4, 3):
        if i < 3:
            out += [nmea("GNRMC,%s,V,,,,,0.00,0.00,,,,N" % hh), nmea("GNVTG,0.00,T,,M,0.00,N,0.00,K,N"),
                    nmea("GNGGA,%s,,,,,0,0,,,M,,M,," % hh), nmea("GNGSA,A,1,,,,,,,,,,,,,,,"),
                    nmea("GNGSA,A,1,,,,,,,,,,,,,,,"), nmea("GPGSV,1,1,00"), nmea("GNGLL,,,,,%s,V,N" % hh)]
            continue
        kn = "%.2f" % knots(trk.speed)
        out += [nmea("GNRMC,%s,A,%s,%s,%s,%s,%s,%.2f,%s,,,A" % (hh, la, ns, lo, ew, kn, trk.course, ddmmyy(t))),
                nmea("GNVTG,%.2f,T,,M,%s,N,%.2f,K,A" % (trk.course, kn, trk.speed * 3.6)),
                nmea("GNGGA,%s,%s,%s,%s,%s,1,14,0.79,%.1f,M,8.3,M,," % (hh, la, ns, lo, ew, 4.2)),
                nmea("GNGSA,A,3,10,12,15,18,24,25,32,,,,,,1.31,0.79,1.05"),
                nmea("GNGSA,A,3,67,68,77,78,83,84,85,,,,,,1.31,0.79,1.05"),
                nmea("GPGSV,3,1,10,10,59,318,38,12,48,197,40,15,24,049,33,18,65,027,43"),
                nmea("GPGSV,3,2,10,24,33,087,35,25,25,239,31,32,11,296,28,13,05,043,"),
                nmea("GPGSV,3,3,10,20,03,120,,23,02,213,"),
                nmea("GLGSV,2,1,07,67,45,026,36,68,77,233,39,77,20,318,27,78,59,018,37"),
                nmea("GLGSV,2,2,07,83,30,154,32,84,44,219,38,85,12,265,24"),
                nmea("GAGSV,1,1,03,02,45,201,35,11,23,067,30,36,61,288,37"),
                nmea("BDGSV,1,1,02,06,38,182,30,16,55,194,33"),
                nmea("GNGLL,%s,%s,%s,%s,%s,A,A" % (la, ns, lo, ew, hh))]
    write("quectel_l76.nmea", out)


# --- Garmin GPS 18x (GPS 18x Technical Specifications, section 4: sentences
# GPRMC GPGGA GPGSA GPGSV PGRME PGRMZ PGRMM at 4800 baud): an older unit
# whose firmware resolves the GPS week from a fixed base, so after the 2019
# rollover it reports dates 1024 weeks (7168 days) early: 2003-07-29 for
# 2023-03-14. Whole-second times, four decimals of minutes.
def garmin():
    out = []
    trk = Track(38.855380, -94.799720, 26.8, 180.0)
    true0 = datetime.datetime(2023, 3, 14, 17, 45, 0)
    shown0 = true0 - datetime.timedelta(days=7168)
    for i, t, la, ns, lo, ew, hh in epochs(trk, shown0, 15, 1, 4, 0):
        out += [nmea("GPRMC,%s,A,%s,%s,%s,%s,%05.1f,%05.1f,%s,003.1,E,D" % (hh, la, ns, lo, ew, knots(trk.speed), trk.course, ddmmyy(t))),
                nmea("GPGGA,%s,%s,%s,%s,%s,2,08,0.9,%.1f,M,-29.9,M,," % (hh, la, ns, lo, ew, 312.0 - 0.3 * i)),
                nmea("GPGSA,A,3,02,05,12,15,18,21,25,29,,,,,1.6,0.9,1.3"),
                nmea("GPGSV,2,1,08,02,26,067,42,05,61,232,46,12,48,302,44,15,10,045,35"),
                nmea("GPGSV,2,2,08,18,27,147,40,21,13,194,33,25,44,087,45,29,70,321,47"),
                nmea("PGRME,4.5,M,6.8,M,8.2,M"), nmea("PGRMZ,%d,f,3" % round((312.0 - 0.3 * i) / 0.3048)),
                nmea("PGRMM,WGS 84")]
    write("garmin_18x.nmea", out)


# --- u-blox ZED-F9P, NMEA 4.11 (ZED-F9P Interface Description, "NMEA
# protocol"): RMC with navigational status, GGA quality 5 (RTK float) then 4
# (RTK fixed) then 2 when corrections stop, GSA per system with the system ID,
# GSV per signal (L1C/A signal 1, L2C signal 6, Galileo E1 7 / E5b 2), GST and
# ZDA; seven decimals of minutes (the high-precision NMEA mode).
def f9p():
    out = []
    trk = Track(43.738416, 7.424633, 5.0, 45.0)
    t0 = datetime.datetime(2024, 2, 29, 10, 0, 0)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 24, 1, 7, 2):
        q, mode, age = (5, "F", "1.0") if i < 8 else (4, "R", "1.0") if i < 18 else (2, "D", "")
        kn = "%.3f" % knots(trk.speed)
        err = {5: (0.21, 0.18, 0.35), 4: (0.012, 0.010, 0.019), 2: (0.45, 0.38, 0.81)}[q]
        out += [nmea("GNRMC,%s,A,%s,%s,%s,%s,%s,%.2f,%s,,,%s,V" % (hh, la, ns, lo, ew, kn, trk.course, ddmmyy(t), mode)),
                nmea("GNVTG,%.2f,T,,M,%s,N,%.3f,K,%s" % (trk.course, kn, trk.speed * 3.6, mode)),
                nmea("GNGGA,%s,%s,%s,%s,%s,%d,12,0.58,%.3f,M,48.121,M,%s,%s" % (hh, la, ns, lo, ew, q, 52.310 + 0.01 * i, age, "0001" if age else "")),
                nmea("GNGSA,A,3,02,05,13,15,18,,,,,,,,1.02,0.58,0.84,1"),
                nmea("GNGSA,A,3,67,68,,,,,,,,,,,1.02,0.58,0.84,2"),
                nmea("GNGSA,A,3,02,11,36,,,,,,,,,,1.02,0.58,0.84,3"),
                nmea("GNGSA,A,3,06,,,,,,,,,,,,1.02,0.58,0.84,4"),
                nmea("GPGSV,2,1,06,02,56,302,45,05,66,097,47,13,37,055,43,15,23,166,41,1"),
                nmea("GPGSV,2,2,06,18,41,226,44,29,04,331,,1"),
                nmea("GPGSV,1,1,04,02,56,302,40,05,66,097,42,13,37,055,37,15,23,166,35,6"),
                nmea("GLGSV,1,1,03,67,33,099,38,68,62,008,42,78,05,320,,1"),
                nmea("GAGSV,1,1,03,02,61,222,44,11,26,145,38,36,43,071,41,7"),
                nmea("GAGSV,1,1,03,02,61,222,41,11,26,145,35,36,43,071,39,2"),
                nmea("GBGSV,1,1,01,06,48,188,39,1"),
                nmea("GNGST,%s,0.52,%.3f,%.3f,32.4,%.3f,%.3f,%.3f" % (hh, err[0] * 1.2, err[1] * 1.1, err[0], err[1], err[2])),
                nmea("GNZDA,%s,%02d,%02d,%04d,00,00" % (hh, t.day, t.month, t.year))]
    write("ublox_f9p_rtk.nmea", out)


# --- Trimble BD990 / Septentrio-style RTK output (Trimble "NMEA-0183
# messages" guide): GGA with eight decimals of minutes and the correction age
# and station, VTG, GST, ZDA; no RMC, so the date comes from ZDA only. RTK
# fixed (4), a drop to float (5), back to fixed; one epoch whose ZDA is
# corrupted, which takes the date carried from the epoch before.
def trimble():
    out = []
    trk = Track(37.391097, -122.037826, 2.5, 270.0)
    t0 = datetime.datetime(2018, 7, 12, 17, 28, 14)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 20, 1, 8, 1):
        q = 5 if 7 <= i < 11 else 4
        out += [nmea("GPZDA,%s,%02d,%02d,%04d,00,00" % (hh, t.day, t.month, t.year)) if i != 13 else nmea("GPZDA,%s,%02d,%02d,%04d,00,00" % (hh, t.day, t.month, t.year)).replace("*", "0*"),
                nmea("GPGGA,%s,%s,%s,%s,%s,%d,%d,1.2,%.3f,M,-25.669,M,%.1f,0031" % (hh, la, ns, lo, ew, q, 11 if q == 4 else 8, 18.893 - 0.002 * i, 1.0 + (i % 3))),
                nmea("GPVTG,%.1f,T,%.1f,M,%.3f,N,%.3f,K,%s" % (trk.course, trk.course - 13.4, knots(trk.speed), trk.speed * 3.6, "D")),
                nmea("GPGST,%s,0.006,0.023,0.020,273.6,%.3f,%.3f,%.3f" % (hh, 0.023 if q == 4 else 0.123, 0.020 if q == 4 else 0.110, 0.031 if q == 4 else 0.190))]
    write("trimble_bd990.nmea", out)


# --- Quirks of real receivers and relays, each a class the decoder must
# handle. Written in the style of the recordings above, but for the
# behaviour, not for one make's manual.

# A receiver that writes its magnetic variation without the E/W indicator,
# so that the FAA mode sits where the direction belongs (the RMC the issue
# quotes), a geoid separation with its unit glued on, and satellite numbers
# with a constellation letter in front in its GSA.
def sloppy_fields():
    out = []
    trk = Track(48.117300, 11.516667, 0.26, 54.7)
    t0 = datetime.datetime(2026, 3, 2, 10, 15, 0)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 12, 1, 4, 3):
        out += [nmea("GPRMC,%s,A,%s,%s,%s,%s,0.50,54.70,%s,0,A" % (hh, la, ns, lo, ew, ddmmyy(t))),
                nmea("GPGGA,%s,%s,%s,%s,%s,1,08,0.9,%.1f,M,47.9M,M,," % (hh, la, ns, lo, ew, 545.4 + 0.1 * i)),
                nmea("GPGSA,A,3,G04,G05,G09,G12,G24,G25,G29,G31,,,,,1.8,0.9,1.5")]
    write("sloppy_fields.nmea", out)


# An integrated navigation system (talker IN), then an ECDIS (talker EC),
# relaying the position of a receiver whose own GSV still comes through as
# GP; the relays write whole seconds and no GSA.
def relayed_talkers():
    out = []
    trk = Track(48.117300, 11.516667, 2.7, 77.3)
    t0 = datetime.datetime(2026, 3, 2, 10, 15, 1)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 10, 1, 4, 0):
        tk = "IN" if i < 6 else "EC"
        out += [nmea("%sRMC,%s,A,%s,%s,%s,%s,%.1f,77.3,%s,2.1,E" % (tk, hh, la, ns, lo, ew, knots(trk.speed), ddmmyy(t))),
                nmea("%sGGA,%s,%s,%s,%s,%s,2,10,0.9,267.9,M,,,," % (tk, hh, la, ns, lo, ew)),
                nmea("IIHDT,77.9,T"),
                nmea("GPGSV,3,1,10,04,36,029,42,05,46,314,43,09,44,020,43,12,21,321,39")]
    write("relayed_talkers.nmea", out)


# A receiver that stamps its GLL a few milliseconds after the GGA and RMC of
# the same epoch, and sends the GLL first.
def gll_ms_late():
    out = []
    trk = Track(48.117300, 11.516667, 6.0, 90.0)
    t0 = datetime.datetime(2026, 3, 2, 10, 15, 4)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 10, 1, 4, 3):
        gll_t = hms(t + datetime.timedelta(milliseconds=5), 3)
        out += [nmea("GPGLL,%s,%s,%s,%s,%s,A,A" % (la, ns, lo, ew, gll_t)),
                nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,90.00,%s,,,A" % (hh, la, ns, lo, ew, knots(trk.speed), ddmmyy(t))),
                nmea("GPGGA,%s,%s,%s,%s,%s,1,09,1.0,512.3,M,47.9,M,," % (hh, la, ns, lo, ew)),
                nmea("GPGSA,A,3,04,05,09,12,24,25,29,31,02,,,,1.8,1.0,1.5")]
    write("gll_ms_late.nmea", out)


# A receiver that stamps its GLL with the next second, in the middle of the
# cycle: RMC and GGA of 10:15:20 with a GLL of 10:15:21 between them.
def gll_second_late():
    out = []
    trk = Track(48.117300, 11.516667, 12.0, 0.0)
    t0 = datetime.datetime(2026, 3, 2, 10, 15, 20)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 12, 1, 4, 2):
        gll_t = hms(t + datetime.timedelta(seconds=1), 2)
        out += [nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,0.00,%s,,,A" % (hh, la, ns, lo, ew, knots(trk.speed), ddmmyy(t))),
                nmea("GPGLL,%s,%s,%s,%s,%s,A,A" % (la, ns, lo, ew, gll_t)),
                nmea("GPGGA,%s,%s,%s,%s,%s,1,09,1.0,512.3,M,47.9,M,," % (hh, la, ns, lo, ew)),
                nmea("GPGSA,A,3,04,05,09,12,24,25,29,31,02,,,,1.8,1.0,1.5")]
    write("gll_second_late.nmea", out)


# GGA qualities that are no fix from the sky: quality 1 with no satellite
# used while acquiring, then fixes, then the receiver switched to its
# simulator (8) and to a manually entered position (7); one epoch whose RMC
# repeats the position of the epoch before while the GGA has moved on.
def unusable_qualities():
    out = []
    trk = Track(48.117300, 11.516667, 10.0, 0.0)
    t0 = datetime.datetime(2026, 3, 2, 10, 15, 3)
    prev = None
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 14, 1, 4, 3):
        q, sats = (1, "00") if i < 3 else (8, "09") if 8 <= i < 10 else (7, "00") if i == 10 else (1, "09")
        rla, rns, rlo, rew = prev if i == 6 else (la, ns, lo, ew)
        out += [nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,0.00,%s,,,%s" % (hh, rla, rns, rlo, rew, knots(trk.speed), ddmmyy(t), "A")),
                nmea("GPGGA,%s,%s,%s,%s,%s,%d,%s,1.0,512.3,M,47.9,M,," % (hh, la, ns, lo, ew, q, sats))]
        prev = (la, ns, lo, ew)
    write("unusable_qualities.nmea", out)


# A receiver that sends its satellite status before the position of each
# cycle (GSA GSV RMC GGA), recorded from the middle of a cycle: the first
# complete line is an RMC. Its HDOP changes every second; it loses the fix
# for two seconds.
def gsa_first_midcycle():
    out = ["3,0.9,1.5*33\r\n"]  # the tail of a GSA line
    trk = Track(48.117300, 11.516667, 10.0, 0.0)
    t0 = datetime.datetime(2026, 3, 2, 10, 15, 40)
    cycles = []
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 16, 1, 4, 3):
        lost = i in (9, 10)
        hdop = 0.8 + 0.1 * (i % 5)
        fix, pdop, vdop = (2, 2.4 + 0.1 * i, 2.0) if i < 4 else (3, 1.4 + 0.1 * i, 1.2)
        if lost:
            c = [nmea("GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9"), nmea("GPGSV,1,1,02,04,36,029,,05,46,314,"),
                 nmea("GPRMC,%s,V,,,,,,,%s,,,N" % (hh, ddmmyy(t))), nmea("GPGGA,%s,,,,,0,00,99.9,,M,,M,," % hh)]
        else:
            c = [nmea("GPGSA,A,%d,04,05,09,12,24,25,29,,,,,,%.1f,%.1f,%.1f" % (fix, pdop, hdop, vdop)),
                 nmea("GPGSV,2,1,07,04,36,029,42,05,46,314,43,09,44,020,43,12,21,321,39"),
                 nmea("GPGSV,2,2,07,24,33,087,35,25,25,239,31,29,11,296,28"),
                 nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,0.00,%s,,,A" % (hh, la, ns, lo, ew, knots(trk.speed), ddmmyy(t))),
                 nmea("GPGGA,%s,%s,%s,%s,%s,1,07,%.1f,%s,M,47.9,M,," % (hh, la, ns, lo, ew, hdop, "" if fix == 2 else "512.3"))]
        cycles.append(c)
    out += cycles[0][2:]  # recording starts after the first cycle's satellites
    for c in cycles[1:]:
        out += c
    write("gsa_first_midcycle.nmea", out)


# A receiver that sends RMC GGA GSA each second, recorded from its start-up:
# the first cycle's GSA is hit by line noise (bad checksum), so the first
# epoch seen ends with its GGA. PDOP changes every second.
def gsa_lost_first():
    out = []
    trk = Track(48.117300, 11.516667, 10.0, 90.0)
    t0 = datetime.datetime(2026, 3, 2, 10, 16, 0)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 12, 1, 4, 3):
        fix = 2 if i in (5, 6) else 3
        gsa_line = nmea("GPGSA,A,%d,04,05,09,12,24,25,29,,,,,,%.1f,0.9,1.2" % (fix, 1.5 + 0.1 * i))
        if i == 0:
            gsa_line = gsa_line.replace("GSA,A", "GSA,Q", 1)
        out += [nmea("GPRMC,%s,A,%s,%s,%s,%s,%.2f,90.00,%s,,,A" % (hh, la, ns, lo, ew, knots(trk.speed), ddmmyy(t))),
                nmea("GPGGA,%s,%s,%s,%s,%s,1,07,0.9,%s,M,47.9,M,," % (hh, la, ns, lo, ew, "" if fix == 2 else "512.3")),
                gsa_line]
    write("gsa_lost_first.nmea", out)


# A receiver with no RMC (GGA and ZDA only) that stamps its ZDA half a second
# ahead of the GGA it sends after it, recorded across midnight.
def zda_ahead():
    out = []
    trk = Track(48.117300, 11.516667, 10.0, 90.0)
    t0 = datetime.datetime(2026, 3, 2, 23, 59, 54)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 12, 1, 4, 3):
        z = t + datetime.timedelta(milliseconds=500)
        out += [nmea("GPZDA,%s,%02d,%02d,%04d,00,00" % (hms(z, 3), z.day, z.month, z.year)),
                nmea("GPGGA,%s,%s,%s,%s,%s,1,09,1.0,512.3,M,47.9,M,," % (hh, la, ns, lo, ew)),
                nmea("GPGSA,A,3,04,05,09,12,24,25,29,31,02,,,,1.8,1.0,1.5")]
    write("zda_ahead.nmea", out)


# NMEA 4.11 GSV with signal ids, hex: GPS L1 C/A (1) and L5 (7), Galileo E1
# (7) and E5b (2), BeiDou B1I (1) and B2I (B).
def signal_ids():
    out = []
    trk = Track(43.738416, 7.424633, 5.0, 45.0)
    t0 = datetime.datetime(2026, 3, 2, 10, 17, 0)
    for i, t, la, ns, lo, ew, hh in epochs(trk, t0, 6, 1, 5, 2):
        out += [nmea("GNRMC,%s,A,%s,%s,%s,%s,%.3f,45.00,%s,,,A,V" % (hh, la, ns, lo, ew, knots(trk.speed), ddmmyy(t))),
                nmea("GNGGA,%s,%s,%s,%s,%s,1,14,0.70,52.31,M,48.12,M,," % (hh, la, ns, lo, ew)),
                nmea("GPGSV,2,1,05,02,56,302,45,05,66,097,47,13,37,055,43,15,23,166,41,1"),
                nmea("GPGSV,2,2,05,18,41,226,44,1"),
                nmea("GPGSV,1,1,02,05,66,097,40,13,37,055,38,7"),
                nmea("GAGSV,1,1,03,02,61,222,44,11,26,145,38,36,43,071,41,7"),
                nmea("GAGSV,1,1,04,02,61,222,41,11,26,145,35,36,43,071,39,12,10,300,,2"),
                nmea("GBGSV,1,1,02,06,48,188,39,14,33,101,36,1"),
                nmea("GBGSV,1,1,03,06,48,188,37,14,33,101,35,21,15,250,,B")]
    write("signal_ids.nmea", out)


if __name__ == "__main__":
    ublox_m8()
    sirf()
    mediatek()
    quectel()
    garmin()
    f9p()
    trimble()
    sloppy_fields()
    relayed_talkers()
    gll_ms_late()
    gll_second_late()
    unusable_qualities()
    gsa_first_midcycle()
    gsa_lost_first()
    zda_ahead()
    signal_ids()
