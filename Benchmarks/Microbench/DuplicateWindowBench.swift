import CDPDK
import FastcapaCapture
import Glibc

// The duplicate window alone: nanoseconds per frame of `DuplicateWindow.isDuplicate`
// (digest, one bucket, verdict) for 64- and 1500-byte frames, every frame a
// duplicate (hits: the same frames again within the window) or none (misses:
// frames never seen, each taking a slot); and the DPDK memory per entry.

/// A table of `entries`, or nil after saying why there is none.
func duplicateWindow(entries: Int) -> DuplicateWindow? {
    do {
        return try DuplicateWindow(entries: entries, socket: -1, queue: 0)
    } catch {
        print("  skipped, \(error)")
        return nil
    }
}

func duplicateWindowBenchmarks(loop: Double) {
    print("duplicate window isDuplicate (digest, bucket, verdict), median of 5 rounds:")
    let entries = 1 << 16
    let before = dpdkHeapBytes()
    guard let table = duplicateWindow(entries: entries) else { return }
    let tableBytes = dpdkHeapBytes() - before
    let window: UInt64 = 1_000_000
    for length in [64, 1_500] {
        // 4 096 frames, each different in its first 8 bytes, in one buffer.
        let frameCount = 4_096
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frameCount * length, alignment: 64)
        defer { buffer.deallocate() }
        for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: index &* 131 &+ index >> 9) }
        for frame in 0..<frameCount {
            buffer.storeBytes(of: UInt64(frame), toByteOffset: frame * length, as: UInt64.self)
        }
        let frames = UnsafeRawBufferPointer(buffer)
        // Hits: the frames remembered once, then seen again and again within the window.
        for frame in 0..<frameCount {
            _ = table.isDuplicate(
                bytes: UnsafeRawBufferPointer(rebasing: frames[frame * length..<(frame + 1) * length]),
                originalLength: length,
                micros: 1,
                windowMicros: window
            )
        }
        let iterations = length == 64 ? 4_000_000 : 1_000_000
        let hit = measure(iterations, rounds: 5) { iterations in
            var duplicates: UInt = 0
            var frame = 0
            for _ in 0..<iterations {
                let bytes = UnsafeRawBufferPointer(rebasing: frames[frame * length..<(frame + 1) * length])
                if table.isDuplicate(bytes: bytes, originalLength: length, micros: 2, windowMicros: window) {
                    duplicates &+= 1
                }
                frame += 1
                if frame == frameCount { frame = 0 }
            }
            consume(duplicates)
        }
        // Misses: each frame's first word changed every time, so no frame was seen before.
        var serial = UInt64(frameCount)
        let miss = measure(iterations, rounds: 5) { iterations in
            var duplicates: UInt = 0
            var frame = 0
            for _ in 0..<iterations {
                buffer.storeBytes(of: serial, toByteOffset: frame * length, as: UInt64.self)
                serial &+= 1
                let bytes = UnsafeRawBufferPointer(rebasing: frames[frame * length..<(frame + 1) * length])
                if table.isDuplicate(bytes: bytes, originalLength: length, micros: 3, windowMicros: 0) {
                    duplicates &+= 1
                }
                frame += 1
                if frame == frameCount { frame = 0 }
            }
            consume(duplicates)
        }
        let name = "\(length) B"
        print(
            "  " + name + String(repeating: " ", count: max(0, 8 - name.count))
                + String(format: "hit %7.2f ns per frame (%.2f over the loop), ", hit, hit - loop)
                + String(format: "miss %7.2f ns per frame (%.2f over the loop)", miss, miss - loop)
        )
    }
    print(
        String(
            format: "  %d entries: %.1f MiB, %.1f bytes per entry (estimate %.0f)",
            table.entries,
            Double(tableBytes) / 1_048_576,
            Double(tableBytes) / Double(table.entries),
            Double(DuplicateWindow.approximateBytes(entries: table.entries)) / Double(table.entries)
        )
    )
    table.release()
    duplicateWindowSizing()
}

/// How often a table of `ratio` entries per frame in the window pushes out a frame
/// still inside it: unique frames, one per µs, the window W µs, so W frames live.
func duplicateWindowSizing() {
    print("duplicate window sizing: frames pushed out inside the window, unique frames, 1 per µs:")
    let entries = 1 << 16
    for ratio in [1, 2, 4, 8] {
        let window = UInt64(entries / ratio)
        guard let table = duplicateWindow(entries: entries) else { return }
        let frames = 20 * entries
        var frame = [UInt8](repeating: 0x5A, count: 64)
        frame.withUnsafeMutableBytes { bytes in
            for index in 0..<frames {
                bytes.storeBytes(of: UInt64(index), toByteOffset: 0, as: UInt64.self)
                _ = table.isDuplicate(
                    bytes: UnsafeRawBufferPointer(bytes),
                    originalLength: 64,
                    micros: UInt64(index),
                    windowMicros: window
                )
            }
        }
        let evicted = table.counters.evictedInWindow
        table.release()
        print(
            String(
                format: "  entries = %d × frames in the window: %.4f%% of frames pushed out early",
                ratio,
                100 * Double(evicted) / Double(frames)
            )
        )
    }
}
