import FastcapaKafka
import Foundation

/// Values that point elsewhere, so that secrets stay out of the files:
/// `${NAME}` in a config-file or INI value is the environment variable NAME,
/// `${NAME:-TEXT}` the same or TEXT when NAME is unset or empty (as in sh;
/// `$${` is a literal `${`), and a secret property (`sasl.password`,
/// `ssl.key.password`, …) whose value is `@/path` is that file's content, or
/// `@NAME` the systemd credential NAME (`LoadCredential=`, in
/// `$CREDENTIALS_DIRECTORY`); `@@` is a literal `@`.
enum ValueReferences {
    /// `text` with every `${NAME}` replaced by the environment's value.
    /// - Parameter at: where the value came from (`file:line`), for the error.
    static func expandEnvironment(_ text: String, at: String, environment: [String: String]) throws -> String {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            // `$${` stands for a literal `${`.
            if start.lowerBound > rest.startIndex, rest[rest.index(before: start.lowerBound)] == "$" {
                result += rest[..<rest.index(before: start.lowerBound)] + "${"
                rest = rest[start.upperBound...]
                continue
            }
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw SettingError(
                    "\(at): '${' has no closing '}'. Write an environment variable as ${NAME}, or a literal '${' as '$${'."
                )
            }
            let reference = rest[start.upperBound..<end]
            let fallback = reference.range(of: ":-").map { String(reference[$0.upperBound...]) }
            let name = String(reference[..<(reference.range(of: ":-")?.lowerBound ?? reference.endIndex)])
            guard isVariableName(name) else {
                throw SettingError(
                    "\(at): '${\(name)}' is not an environment variable name. Use letters, digits and '_' (not first), or write a literal '${' as '$${'."
                )
            }
            if let fallback, environment[name]?.isEmpty ?? true {
                result += fallback
                rest = rest[rest.index(after: end)...]
                continue
            }
            guard let value = environment[name] else {
                throw SettingError(
                    "\(at): the environment variable \(name) (${\(name)}) is not set. Set it (under systemd: Environment= or EnvironmentFile=), give a default as ${\(name):-VALUE}, or write the value itself."
                )
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.isASCIILetter else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0.isASCIILetter || $0.isASCIIDigit }
    }

    /// A secret property's value: the file or credential it names, or itself.
    /// - Parameter credentialsFrom: what gave `$CREDENTIALS_DIRECTORY`, for a refusal.
    static func resolveSecret(
        _ entry: KafkaProperties.Entry,
        environment: [String: String],
        credentialsFrom: String = CredentialsDirectory.systemdVariable
    ) throws -> String {
        let value = entry.value
        guard KafkaProperties.isSensitive(entry.key), value.hasPrefix("@") else { return value }
        if value.hasPrefix("@@") { return String(value.dropFirst()) }
        let reference = String(value.dropFirst())
        let path: String
        let text: String
        if reference.contains("/") {
            path = reference
            text = try CaptureOptions.readTextFile(
                path,
                what: "\(entry.key) (from \(entry.origin)): the secret file",
                kind: "text",
                missingFix: "Give the file holding the secret as @/path (a literal '@' is written '@@')."
            )
        } else {
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                throw SettingError(
                    "\(entry.key) (from \(entry.origin)): '@\(reference)' names a systemd credential, but $CREDENTIALS_DIRECTORY is not set. Under systemd add LoadCredential=\(reference):/etc/fastcapa/\(reference) to the unit; from a shell (fastcapa check, --print-config, consume) give the folder that holds the credential files, as the service gets them: --credentials-directory /etc/fastcapa; otherwise give a file as @/path (or a literal '@' as '@@')."
                )
            }
            path = "\(directory)/\(reference)"
            do {
                text = try CaptureOptions.readTextFile(
                    path,
                    what: "\(entry.key) (from \(entry.origin)): the credential file",
                    kind: "text",
                    missingFix: ""
                )
            } catch let error as SettingError {
                // Which folder was read, and what gave it: the fix is there or in the option.
                throw SettingError(
                    "\(error.message.trimmingCharacters(in: .whitespaces)) '@\(reference)' is read from the credentials folder '\(directory)' (\(credentialsFrom)). Put the secret in \(path), readable by this user, or give the folder that holds it (the one the unit's LoadCredential=\(reference):PATH line reads): --credentials-directory DIR."
                )
            }
        }
        // One trailing newline is the file's, not the secret's (echo, editors).
        var secret = Substring(text)
        if secret.hasSuffix("\r\n") {
            secret = secret.dropLast(2)
        } else if secret.hasSuffix("\n") {
            secret = secret.dropLast()
        }
        guard !secret.isEmpty else {
            throw SettingError(
                "\(entry.key) (from \(entry.origin)): the secret file '\(path)' is empty. Put the secret in it."
            )
        }
        return String(secret)
    }

    /// Every secret property resolved (`@/path`, `@NAME`), keeping its origin.
    static func resolvingSecrets(
        _ properties: KafkaProperties,
        environment: [String: String],
        credentialsFrom: String = CredentialsDirectory.systemdVariable
    ) throws -> KafkaProperties {
        func resolve(_ entries: [KafkaProperties.Entry]) throws -> [KafkaProperties.Entry] {
            try entries.map { entry in
                var entry = entry
                entry.value = try resolveSecret(entry, environment: environment, credentialsFrom: credentialsFrom)
                return entry
            }
        }
        return KafkaProperties(global: try resolve(properties.global), topic: try resolve(properties.topic))
    }

    /// Every value `${NAME}`-expanded, each error naming the entry's origin.
    static func expandingEnvironment(
        _ entries: [KafkaProperties.Entry],
        environment: [String: String]
    ) throws -> [KafkaProperties.Entry] {
        try entries.map { entry in
            var entry = entry
            entry.value = try expandEnvironment(
                entry.value,
                at: "\(entry.origin) (\(entry.key))",
                environment: environment
            )
            return entry
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// `--credentials-directory DIR`: the folder `@NAME` secrets are read from when systemd did not
/// give one (`$CREDENTIALS_DIRECTORY`), so that a shell sees what the service sees.
enum CredentialsDirectory {
    /// Where systemd gives the folder (`LoadCredential=`).
    static let systemdVariable = "$CREDENTIALS_DIRECTORY"
    /// Where a shell gives it.
    static let option = "--credentials-directory"

    /// `environment` with `$CREDENTIALS_DIRECTORY` set to `directory` (checked), or as it is.
    static func environment(_ environment: [String: String], directory: String?) throws -> [String: String] {
        guard let directory else { return environment }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw SettingError(
                "credentials-directory: '\(directory)' is not a folder. Give the folder that holds one file per credential (the files the unit's LoadCredential= lines name), e.g. --credentials-directory /etc/fastcapa."
            )
        }
        var environment = environment
        environment["CREDENTIALS_DIRECTORY"] = directory
        return environment
    }
}
