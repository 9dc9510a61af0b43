import FastcapaCapture
import Testing

/// When a transmit worker closes a bundle (`BundleLimits`): at its packet limit,
/// before a record that does not fit its bytes, and once its oldest packet has
/// waited the linger (TSC ticks, across the counter's wrap).
@Suite struct BundleLimitsTests {
    let limits = BundleLimits(packets: 7, bytes: 1000, lingerTicks: 500)

    @Test func closesAtThePacketLimit() {
        #expect(!limits.isFull(packets: 6))
        #expect(limits.isFull(packets: 7))
        #expect(limits.closesBefore(packets: 7, used: 100, recordLength: 16))
        #expect(!limits.closesBefore(packets: 6, used: 100, recordLength: 16))
    }

    @Test func aRecordThatDoesNotFitClosesTheBundleFirst() {
        // 984 + 16 fills the value exactly; one byte more does not fit.
        #expect(!limits.closesBefore(packets: 1, used: 984, recordLength: 16))
        #expect(limits.closesBefore(packets: 1, used: 985, recordLength: 16))
        #expect(limits.closesBefore(packets: 1, used: 500, recordLength: 501))
        #expect(!limits.closesBefore(packets: 0, used: 0, recordLength: 1000))
    }

    @Test func closesOnceTheLingerHasPassed() {
        #expect(!limits.hasLingered(opened: 10_000, now: 10_499))
        #expect(limits.hasLingered(opened: 10_000, now: 10_500))
        #expect(limits.hasLingered(opened: 10_000, now: 99_999))
        // The TSC wrapping between the two reads.
        #expect(!limits.hasLingered(opened: UInt64.max - 100, now: 300))
        #expect(limits.hasLingered(opened: UInt64.max - 100, now: 400))
    }

    @Test func aOnePacketLimitClosesEveryBundleAtOnce() {
        let single = BundleLimits(packets: 1, bytes: 1 << 20, lingerTicks: 1)
        #expect(single.isFull(packets: 1))
        #expect(single.closesBefore(packets: 1, used: 80, recordLength: 80))
    }
}
