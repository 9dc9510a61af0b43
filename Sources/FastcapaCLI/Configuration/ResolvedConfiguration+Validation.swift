import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging

extension ResolvedConfiguration {
    /// swift-log's levels, the values of `--log-level`.
    static let logLevels = Logger.Level.allCases.map(\.rawValue)

    /// Checks what no single setting can check alone.
    func validate() throws {
        do {
            try settings.validate()
        } catch {
            if error.key == "filter", let filterFile {
                throw SettingError("capture filter in the filter file '\(filterFile)': \(error.problem). \(error.fix)")
            }
            throw SettingError(error)
        }
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw SettingError(message) } }
        if settings.bundles {
            // librdkafka refuses a message above message.max.bytes: every bundle would be dropped.
            let given = kafka.globalValue("message.max.bytes")
            let messageMax = given.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 1_000_000
            let most = messageMax - CaptureSettings.bundleOverheadBytes
            try check(
                settings.bundleBytes <= most,
                "bundle-bytes: \(settings.bundleBytes) is more than message.max.bytes \(messageMax)"
                    + "\(given == nil ? " (librdkafka's default)" : "") leaves for a value after "
                    + "\(CaptureSettings.bundleOverheadBytes) bytes of key and headers (\(most)). "
                    + "Use --bundle-bytes \(max(most, 0)) or less, or raise message.max.bytes in the Kafka properties."
            )
        }
        try check(statsInterval >= 0, "stats-interval: \(statsInterval) is negative. Use 0 (off) or more seconds.")
        try check(
            (0...86_400).contains(drainTimeout),
            "drain-timeout: \(drainTimeout) is out of range. Use 0 to 86400 seconds."
        )
        try check(idleExit >= 0, "idle-exit: \(idleExit) is negative. Use 0 (never) or more seconds.")
        try check(
            (1...1000).contains(embeddedPartitions),
            "embedded-partitions: \(embeddedPartitions) is out of range. Use 1 to 1000."
        )
        try check(
            (1...600_000).contains(restartBackoffMs),
            "restart-backoff-ms: \(restartBackoffMs) is out of range. Use 1 to 600000 ms."
        )
        try check(
            (1...3600).contains(restartBackoffMaxSeconds),
            "restart-backoff-max: \(restartBackoffMaxSeconds) is out of range. Use 1 to 3600 s."
        )
        try check(
            (1...10_000).contains(maxRestartsPerMinute),
            "max-restarts-per-minute: \(maxRestartsPerMinute) is out of range. Use 1 to 10000."
        )
        try check(
            (1...600_000).contains(slowRoundTripMs),
            "slow-round-trip-ms: \(slowRoundTripMs) is out of range. Use 1 to 600000 ms."
        )
        try check(
            (1...86_400).contains(stallSeconds),
            "stall-seconds: \(stallSeconds) is out of range. Use 1 to 86400."
        )
        try check(
            (1...60_000).contains(counterTraceIntervalMs),
            "counter-trace-interval-ms: \(counterTraceIntervalMs) is out of range. Use 1 to 60000."
        )
        if let metricsAddress { _ = try MetricsAddress(parsing: metricsAddress) }
        // The af_packet ring the kernel would refuse: DPDK then fails to start without saying why. The fix
        // names a ring that also holds the interface's frames (when it can be read here), so that following
        // it does not lead to the port's refusal of a slot too short for them.
        for device in DeviceArguments.virtualDevices(in: eal) where device.isAfPacket {
            do throws(AfPacketRing.RingError) {
                let largestFrame = device.values("iface").compactMap { try? KernelInterface.read($0).largestFrame }
                    .max()
                try AfPacketRing(device).check(device: device, largestFrame: largestFrame)
            } catch {
                throw SettingError("\(device.vdev): \(error.description)")
            }
        }
        try check(
            Self.logLevels.contains(logLevel),
            "log-level: '\(logLevel)' is not a level. Use trace, debug, info, notice, warning, error or critical."
        )
        do {
            try KafkaConfiguration.validate(kafka)
        } catch {
            throw SettingError(error.description)
        }
    }
}
