/// A seeded PRNG (SplitMix64) so corpora are byte-identical on every run and
/// toolchain. The helpers below avoid the standard library's `random(in:using:)`,
/// whose way of drawing from a generator is not promised to stay the same.
package struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `range` (multiply-high; the tiny bias does not matter here).
    package mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        if span == 0 { return Int(truncatingIfNeeded: next()) }
        return range.lowerBound + Int(next().multipliedFullWidth(by: span).high)
    }

    /// True with probability `percent`/100.
    package mutating func percent(_ percent: Int) -> Bool { int(0...99) < percent }

    package mutating func pick<T>(_ items: [T]) -> T { items[int(0...items.count - 1)] }

    package mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            let word = next()
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(word >> UInt64(shift) & 0xFF)) }
        }
        return Array(out.prefix(count))
    }

    package mutating func uint32() -> UInt32 { UInt32(truncatingIfNeeded: next() >> 32) }
    package mutating func uint16() -> UInt16 { UInt16(truncatingIfNeeded: next() >> 48) }
}
