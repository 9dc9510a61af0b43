/// Merges the packets read from several partitions into capture-time order: a
/// k-way merge of the partitions, each kept in its own (offset) order.
///
/// A partition's packets wait in its queue; the earliest head of all queues is
/// released once no partition still being read could bring an earlier one:
/// every open partition has a packet waiting, or has already shown a key at
/// least `slack` past that head (a key falls at most `slack` below a key before
/// it in the same partition, the bound the seek relies on). A partition that is
/// finished (its end, or past `--until`) no longer holds the others back.
/// The queues hold at most `window` packets in all: past it the earliest head
/// is released anyway (counted in `releasedEarly`), so a partition that stalls
/// cannot hold the whole read in memory.
package struct CaptureTimeMerge<Item> {
    private struct Queue {
        var items: [(key: UInt64, item: Item)] = []
        var head = 0
        var highest: UInt64 = 0
        var seen = false
        var open = true
        var isEmpty: Bool { head == items.count }

        mutating func pop() -> (key: UInt64, item: Item) {
            let first = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 4096 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return first
        }
    }

    private var queues: [Int32: Queue] = [:]
    private var order: [Int32]
    package let slack: UInt64
    package let window: Int
    package private(set) var buffered = 0
    /// Packets released before the merge could place them (the window was full).
    package private(set) var releasedEarly = 0
    /// Packets released with a key below one released before them (a partition's
    /// own order, or an early release).
    package private(set) var outOfOrder = 0
    private var lastReleased: UInt64 = 0

    package init(partitions: [Int32], slack: UInt64, window: Int) {
        order = partitions
        for partition in partitions { queues[partition] = Queue() }
        self.slack = slack
        self.window = max(window, 1)
    }

    /// A key seen in `partition`, kept or not: what the partition can still bring.
    package mutating func observe(_ key: UInt64, partition: Int32) {
        if queues[partition] == nil {
            queues[partition] = Queue()
            order.append(partition)
        }
        queues[partition]!.seen = true
        if key > queues[partition]!.highest { queues[partition]!.highest = key }
    }

    /// Queues `item`, read from `partition` with `key`.
    package mutating func add(_ item: Item, key: UInt64, partition: Int32) {
        observe(key, partition: partition)
        queues[partition]!.items.append((key, item))
        buffered += 1
    }

    /// Nothing more will come from `partition`.
    package mutating func finish(_ partition: Int32) { queues[partition]?.open = false }

    /// Nothing more will come from any partition (the end of the read).
    package mutating func finishAll() {
        for partition in order { queues[partition]!.open = false }
    }

    /// The next packet that may be written now, or nil.
    package mutating func next() -> Item? {
        var earliest: Int32?
        var earliestKey = UInt64.max
        for partition in order {
            let queue = queues[partition]!
            guard !queue.isEmpty else { continue }
            let key = queue.items[queue.head].key
            if earliest == nil || key < earliestKey {
                earliest = partition
                earliestKey = key
            }
        }
        guard let earliest else { return nil }
        let full = buffered > window
        if !full {
            for partition in order {
                let queue = queues[partition]!
                guard queue.open && queue.isEmpty else { continue }
                // An open partition with nothing waiting could still bring an earlier packet.
                guard queue.seen, queue.highest >= earliestKey &+ slack else { return nil }
            }
        }
        let released = queues[earliest]!.pop()
        buffered -= 1
        if full { releasedEarly += 1 }
        if released.key < lastReleased { outOfOrder += 1 }
        lastReleased = max(lastReleased, released.key)
        return released.item
    }
}
