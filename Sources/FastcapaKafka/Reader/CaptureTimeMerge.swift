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
///
/// Cost: a packet read is one dictionary lookup (partition to slot); `next()`
/// returns at once while nothing waits (a scan outside the window), and
/// otherwise looks at each partition's head once. The state it scans is kept in
/// arrays of plain values, one element per partition: generic code (this type is
/// not specialised across modules) would copy a generic queue to read a field.
package struct CaptureTimeMerge<Item> {
    /// Per partition (by slot): its waiting keys and items from `heads` on.
    private var keys: [[UInt64]] = []
    private var items: [[Item]] = []
    private var heads: [Int] = []
    /// The highest key seen (kept or not), and whether any was.
    private var highest: [UInt64] = []
    private var seen: [Bool] = []
    private var open: [Bool] = []
    private var slots: [Int32: Int] = [:]
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
        self.slack = slack
        self.window = max(window, 1)
        for partition in partitions { _ = slot(partition) }
    }

    private mutating func slot(_ partition: Int32) -> Int {
        if let slot = slots[partition] { return slot }
        slots[partition] = keys.count
        keys.append([])
        items.append([])
        heads.append(0)
        highest.append(0)
        seen.append(false)
        open.append(true)
        return keys.count - 1
    }

    private func isEmpty(_ slot: Int) -> Bool { heads[slot] == keys[slot].count }

    /// A key seen in `partition`, kept or not: what the partition can still bring.
    package mutating func observe(_ key: UInt64, partition: Int32) {
        let slot = slot(partition)
        seen[slot] = true
        if key > highest[slot] { highest[slot] = key }
    }

    /// Queues `item`, read from `partition` with `key`.
    package mutating func add(_ item: Item, key: UInt64, partition: Int32) {
        let slot = slot(partition)
        seen[slot] = true
        if key > highest[slot] { highest[slot] = key }
        keys[slot].append(key)
        items[slot].append(item)
        buffered += 1
    }

    /// Nothing more will come from `partition`.
    package mutating func finish(_ partition: Int32) {
        if let slot = slots[partition] { open[slot] = false }
    }

    /// Nothing more will come from any partition (the end of the read).
    package mutating func finishAll() {
        for slot in open.indices { open[slot] = false }
    }

    /// The next packet that may be written now, or nil. `flush`: the earliest
    /// waiting packet whatever the open partitions could still bring (the end of
    /// a read, or a pause while following), without closing them.
    package mutating func next(flush: Bool = false) -> Item? {
        guard buffered > 0 else { return nil }
        var earliest = -1
        var earliestKey = UInt64.max
        for slot in keys.indices where !isEmpty(slot) {
            let key = keys[slot][heads[slot]]
            if earliest < 0 || key < earliestKey {
                earliest = slot
                earliestKey = key
            }
        }
        let full = buffered > window
        if !full && !flush {
            for slot in keys.indices where open[slot] && isEmpty(slot) {
                // An open partition with nothing waiting could still bring an earlier packet.
                guard seen[slot], highest[slot] >= earliestKey &+ slack else { return nil }
            }
        }
        let released = pop(earliest)
        buffered -= 1
        if full { releasedEarly += 1 }
        if released.key < lastReleased { outOfOrder += 1 }
        lastReleased = max(lastReleased, released.key)
        return released.item
    }

    private mutating func pop(_ slot: Int) -> (key: UInt64, item: Item) {
        let head = heads[slot]
        let first = (keys[slot][head], items[slot][head])
        heads[slot] = head + 1
        if head + 1 == keys[slot].count {
            keys[slot].removeAll(keepingCapacity: true)
            items[slot].removeAll(keepingCapacity: true)
            heads[slot] = 0
        } else if head + 1 >= 4096 && (head + 1) * 2 >= keys[slot].count {
            keys[slot].removeFirst(head + 1)
            items[slot].removeFirst(head + 1)
            heads[slot] = 0
        }
        return first
    }
}
