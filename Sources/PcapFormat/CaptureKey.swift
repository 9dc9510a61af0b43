/// The key of every message fastcapa publishes: the packet's capture time in
/// epoch microseconds, 8 bytes, big-endian (network byte order).
package enum CaptureKey {
    package static func encode(micros: UInt64) -> [UInt8] {
        withUnsafeBytes(of: micros.bigEndian) { Array($0) }
    }

    /// The time in a key, or nil when the key is not 8 bytes.
    package static func decode(_ key: [UInt8]) -> UInt64? {
        guard key.count == 8 else { return nil }
        return key.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
