#!/usr/bin/env python3
"""The helper of Scripts/clock-accuracy: builds the replay corpus and compares capture times.

  corpus OUT.pcap --frames N --mtu M [--shared DIR]
      N unique frames of mixed sizes (Ethernet, IPv4 UDP and TCP, some 802.1Q-tagged, up to
      M + 14 bytes), then every Ethernet frame of DIR/*.pcap the link carries whole.
  compare CORPUS.pcap ORACLE.pcap PROBE.pcap [--label TEXT] [--threshold-us T]
      For every frame whose bytes occur once in the corpus, once in the oracle (tcpdump) and once in
      what the probe published: the probe's capture time minus the oracle's, in microseconds.
      With --accounting FILE (the probe's standard output), the counters of held clock values its
      accounting-json line reports (any field whose name holds "clock" and "held" or "hold"), if any.
      Prints a summary and one JSON line ("result: {...}").
  table < RESULTS
      The JSON of compare's result lines as a Markdown table, one row per run.

Only the standard library: the host has python3 and no pip installs.
"""

import argparse
import glob
import json
import os
import random
import struct
import sys
from collections import Counter

PCAP_MICROS = 0xA1B2C3D4
PCAP_NANOS = 0xA1B23C4D


def read_pcap(path):
    """(link type, [(epoch nanoseconds, bytes, original length)]) of a classic pcap file."""
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 24:
        raise SystemExit(f"{path}: shorter than a pcap header ({len(data)} bytes)")
    for order in ("<", ">"):
        (magic,) = struct.unpack(order + "I", data[:4])
        if magic in (PCAP_MICROS, PCAP_NANOS):
            break
    else:
        raise SystemExit(f"{path}: not a classic pcap file (pcapng? write it with -w and no --pcapng)")
    scale = 1 if magic == PCAP_NANOS else 1000
    link_type = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    records = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, included, original = struct.unpack(order + "IIII", data[offset : offset + 16])
        offset += 16
        frame = data[offset : offset + included]
        offset += included
        if len(frame) < included:
            break  # a record cut short by a writer that was stopped
        records.append((seconds * 1_000_000_000 + fraction * scale, frame, original))
    return link_type, records


def write_pcap(path, frames, snap_length=262144):
    """A microsecond pcap of `frames`, 1 ms apart (tcpreplay --pps sets the rate)."""
    with open(path, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", PCAP_MICROS, 2, 4, 0, 0, snap_length, 1))
        for index, frame in enumerate(frames):
            micros = 1_000_000_000 + index * 1000
            handle.write(struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)))
            handle.write(frame)


def checksum(header):
    total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def synthetic_frame(index, length, rng):
    """A frame of exactly `length` bytes (>= 64) whose payload starts with `index`: unique by construction."""
    tagged = index % 10 == 3
    ethernet = bytes.fromhex("020000000002" "020000000001")
    if tagged:
        ethernet += struct.pack("!HH", 0x8100, 100 + index % 4)
    ethernet += struct.pack("!H", 0x0800)
    tcp = index % 3 == 0
    transport_length = 20 if tcp else 8
    ip_total = length - len(ethernet)
    payload_length = ip_total - 20 - transport_length
    source = bytes([10, 1, (index >> 8) & 0xFF, index & 0xFF])
    destination = bytes([10, 2, 0, 1 + index % 200])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_total, index & 0xFFFF, 0x4000, 64, 6 if tcp else 17, 0, source, destination)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    ports = struct.pack("!HH", 40000 + index % 1000, 443 if tcp else 53)
    if tcp:
        transport = ports + struct.pack("!IIBBHHH", index, 0, 5 << 4, 0x18, 65535, 0, 0)
    else:
        transport = ports + struct.pack("!HH", 8 + payload_length, 0)
    payload = struct.pack("!Q", index) + bytes(rng.getrandbits(8) for _ in range(64))
    payload = payload[:payload_length] + bytes(max(payload_length - len(payload), 0))
    return ethernet + ip + transport + payload


def frame_length(rng, mtu):
    """Mixed sizes: mostly IMIX-like (64, ~600, 1514), some anywhere up to the MTU."""
    roll = rng.random()
    if roll < 0.35:
        return 64
    if roll < 0.55:
        return rng.randint(65, 600)
    if roll < 0.75:
        return rng.randint(601, 1514)
    if roll < 0.85:
        return 1514
    return rng.randint(1515, mtu + 14) if mtu > 1500 else rng.randint(65, 1514)


def corpus(arguments):
    rng = random.Random(28)
    frames = [synthetic_frame(index, frame_length(rng, arguments.mtu), rng) for index in range(arguments.frames)]
    shared = 0
    skipped = 0
    if arguments.shared and os.path.isdir(arguments.shared):
        for path in sorted(glob.glob(os.path.join(arguments.shared, "*.pcap"))):
            try:
                link_type, records = read_pcap(path)
            except SystemExit:
                continue
            if link_type != 1:
                skipped += len(records)
                continue
            for _, frame, original in records:
                tagged = len(frame) >= 14 and frame[12:14] in (b"\x81\x00", b"\x88\xa8")
                if len(frame) != original or len(frame) < 14 or len(frame) > arguments.mtu + (18 if tagged else 14):
                    skipped += 1
                    continue
                frames.append(frame)
                shared += 1
    write_pcap(arguments.output, frames)
    unique = sum(1 for count in Counter(frames).values() if count == 1)
    print(
        f"corpus: {len(frames)} frames ({arguments.frames} generated, {shared} from shared captures, "
        f"{skipped} of those left out: not Ethernet, cut, or longer than the MTU), {unique} unique by bytes"
    )


def percentile(sorted_values, fraction):
    """Nearest rank."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def held_counters(path):
    """The fields of the probe's last accounting-json line that count held clock values; None if none."""
    if not path or not os.path.exists(path):
        return None
    line = None
    with open(path, errors="replace") as handle:
        for text in handle:
            if text.startswith("accounting-json: "):
                line = text[len("accounting-json: ") :]
    try:
        accounting = json.loads(line) if line else {}
    except ValueError:
        return None
    fields = {name: value for name, value in accounting.items() if "clock" in name and ("held" in name or "hold" in name)}
    return fields or None


def compare(arguments):
    _, corpus_records = read_pcap(arguments.corpus)
    _, oracle = read_pcap(arguments.oracle)
    _, probe = read_pcap(arguments.probe)
    in_corpus = Counter(frame for _, frame, _ in corpus_records)
    oracle_times = {}
    oracle_counts = Counter()
    for nanos, frame, _ in oracle:
        oracle_counts[frame] += 1
        oracle_times[frame] = nanos
    probe_times = {}
    probe_counts = Counter()
    for nanos, frame, _ in probe:
        probe_counts[frame] += 1
        probe_times[frame] = nanos
    matched = [
        (oracle_times[frame], (probe_times[frame] - oracle_times[frame]) / 1000.0)
        for frame, count in in_corpus.items()
        if count == 1 and oracle_counts[frame] == 1 and probe_counts[frame] == 1
    ]
    matched.sort()
    unique = sum(1 for count in in_corpus.values() if count == 1)
    errors = sorted(error for _, error in matched)
    below = sum(1 for error in errors if error < -arguments.threshold_us)
    result = {
        "label": arguments.label,
        "corpus_unique": unique,
        "oracle": len(oracle),
        "published": len(probe),
        "matched": len(errors),
        "min_us": errors[0] if errors else None,
        "p50_us": percentile(errors, 0.50),
        "p99_us": percentile(errors, 0.99),
        "max_us": errors[-1] if errors else None,
        "below_threshold": below,
        "below_share": below / len(errors) if errors else None,
        "threshold_us": arguments.threshold_us,
        "clock_held": held_counters(arguments.accounting),
    }
    # The error against the time since the first frame: an idle spell's error shows at the start and fades.
    if matched:
        first = matched[0][0]
        spans = [(0, 0.1), (0.1, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 1e9)]
        result["by_time"] = []
        for start, end in spans:
            window = sorted(e for t, e in matched if start <= (t - first) / 1e9 < end)
            if window:
                result["by_time"].append(
                    {"from_s": start, "to_s": end if end < 1e9 else None, "frames": len(window),
                     "min_us": window[0], "p50_us": percentile(window, 0.5), "max_us": window[-1]}
                )
    print("result: " + json.dumps(result))
    if not errors:
        print(f"{arguments.label}: no frame matched (corpus {unique} unique, oracle {len(oracle)}, published {len(probe)})")
        return
    print(
        f"{arguments.label}: {len(errors)} of {unique} unique frames matched; key - tcpdump (us): "
        f"min {errors[0]:+.1f} p50 {result['p50_us']:+.1f} p99 {result['p99_us']:+.1f} max {errors[-1]:+.1f}; "
        f"{100.0 * below / len(errors):.2f} % below -{arguments.threshold_us:g}"
    )
    held = result["clock_held"]
    print(
        "  clock values held: "
        + (", ".join(f"{name} {json.dumps(value)}" for name, value in held.items()) if held else "not reported")
    )
    for span in result.get("by_time", []):
        end = f"{span['to_s']:g}" if span["to_s"] is not None else "end"
        print(
            f"  {span['from_s']:g}-{end} s after the first frame: {span['frames']} frames, "
            f"min {span['min_us']:+.1f} p50 {span['p50_us']:+.1f} max {span['max_us']:+.1f}"
        )


def table(_):
    print("| driver | layout | frames matched | min | p50 | p99 | max | below -50 us | clock values held |")
    print("|---|---|---|---|---|---|---|---|---|")
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        driver, layout = (r["label"].split(" ", 1) + [""])[:2]
        held = r.get("clock_held")
        held = ", ".join(f"{name} {json.dumps(value)}" for name, value in held.items()) if held else "not reported"
        if not r["matched"]:
            print(f"| {driver} | {layout} | 0 of {r['corpus_unique']:,} | | | | | | {held} |")
            continue
        print(
            f"| {driver} | {layout} | {r['matched']:,} of {r['corpus_unique']:,} | {r['min_us']:+,.0f} "
            f"| {r['p50_us']:+,.0f} | {r['p99_us']:+,.0f} | {r['max_us']:+,.0f} "
            f"| {100 * r['below_share']:.1f} % | {held} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("corpus")
    make.add_argument("output")
    make.add_argument("--frames", type=int, default=3000)
    make.add_argument("--mtu", type=int, default=9000)
    make.add_argument("--shared")
    check = commands.add_parser("compare")
    check.add_argument("corpus")
    check.add_argument("oracle")
    check.add_argument("probe")
    check.add_argument("--label", default="run")
    check.add_argument("--threshold-us", type=float, default=50.0)
    check.add_argument("--accounting")
    commands.add_parser("table")
    arguments = parser.parse_args()
    if arguments.command == "corpus":
        if arguments.frames < 0 or arguments.frames > 65535 * 200:
            raise SystemExit("--frames: give 0 to 13,107,000 frames")
        corpus(arguments)
    elif arguments.command == "compare":
        compare(arguments)
    else:
        table(arguments)


if __name__ == "__main__":
    sys.exit(main())
