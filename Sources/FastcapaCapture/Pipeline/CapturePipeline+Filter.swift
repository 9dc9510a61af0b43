extension CapturePipeline {
    /// Loads `expression` (nil: no filter) off the lcores, publishes it to every
    /// receive worker through RCU, waits for the grace period and frees the old
    /// program. Blocks: never call it on an lcore or Swift's cooperative pool.
    package func replaceFilter(
        _ expression: String?,
        snapLength: Int,
        engine: FilterEngine
    ) throws(CaptureError) -> FilterSlot.Replacement {
        publishFilter(try Self.loadFilter(expression, snapLength: snapLength, engine: engine))
    }

    /// Compiles and loads a capture filter (nil: none) without publishing it: what can refuse it,
    /// apart from what cannot (`publishFilter`). Needs EAL; never on an lcore or the cooperative pool.
    package static func loadFilter(
        _ expression: String?,
        snapLength: Int,
        engine: FilterEngine
    ) throws(CaptureError) -> PacketFilter? {
        try expression.map { (text: String) throws(CaptureError) in
            try PacketFilter(expression: text, snapLength: snapLength, engine: engine)
        }
    }

    /// Publishes a loaded filter to every receive worker and frees the old one after the grace
    /// period. Blocks for that grace period.
    package func publishFilter(_ next: PacketFilter?) -> FilterSlot.Replacement {
        filter.replace(with: next)
    }
}
