import FastcapaCapture

/// A bad value for a setting, from a flag or the config file.
package struct SettingError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package var description: String { message }
    init(_ message: String) { self.message = message }

    /// A setting the data path refused, named with its flags: "receive burst (-b, --rx-burst): ...".
    init(_ invalid: CaptureSettings.Invalid) {
        let flags = Setting.byKey[invalid.key]?.flags ?? "--\(invalid.key)"
        message = "\(invalid.name) (\(flags)): \(invalid.problem). \(invalid.fix)"
    }
}
