/// Settings a transmit worker reads on every burst, and that a reload can change
/// without stopping it.
package struct ReloadableSettings: Sendable, Equatable {
    package var snapLength: Int
    package var queueFullRetries: Int

    package init(snapLength: Int, queueFullRetries: Int) {
        self.snapLength = snapLength
        self.queueFullRetries = queueFullRetries
    }

    package init(_ settings: CaptureSettings) {
        self.init(snapLength: settings.snapLength, queueFullRetries: settings.queueFullRetries)
    }
}
