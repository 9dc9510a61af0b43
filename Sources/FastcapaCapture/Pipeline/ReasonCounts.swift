import CFastcapaShared

/// A count for each case of a list of reasons (`DropReason`, `ExclusionReason`),
/// kept in the list's order, so that whoever reports them cannot leave one out.
package struct ReasonCounts<Reason: CaseIterable & Equatable>: Sendable, Equatable
where Reason.AllCases.Index == Int {
    private var counts = [UInt64](repeating: 0, count: Reason.allCases.count)

    package init() {}

    package subscript(reason: Reason) -> UInt64 {
        get { counts[Self.index(reason)] }
        set { counts[Self.index(reason)] = newValue }
    }

    /// Every reason with its count, in the list's order.
    package var all: [(reason: Reason, count: UInt64)] { zip(Reason.allCases, counts).map { ($0, $1) } }

    package var total: UInt64 { counts.reduce(0, +) }

    package static func + (a: Self, b: Self) -> Self {
        var sum = a
        for index in sum.counts.indices { sum.counts[index] += b.counts[index] }
        return sum
    }

    private static func index(_ reason: Reason) -> Int { Reason.allCases.firstIndex(of: reason)! }
}

extension ReasonCounts {
    /// Each reason's field of a counter block, read atomically (`field` nil: not counted there).
    init<Block>(
        sampling pointer: UnsafeMutablePointer<Block>,
        _ field: (Reason) -> WritableKeyPath<Block, UInt64>?
    ) {
        for reason in Reason.allCases {
            if let field = field(reason), let counter = pointer.pointer(to: field) {
                self[reason] = fastcapa_counter_load(counter)
            }
        }
    }
}
