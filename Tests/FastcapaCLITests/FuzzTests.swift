import FastcapaKafka
import Foundation
import Testing

@testable import FastcapaCLI

/// The INI, config-file and -X parsers under random mutations of valid input,
/// for a bounded time: they never crash, and every rejection is a clear error
/// (it names a file and line, or the offending text, and a fix).
@Suite struct FuzzTests {
    /// A small, seeded generator: a failure can be replayed from its seed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let alphabet = Array("[]=#;: \n\t-_.abcxyz019\"'{},\u{0}\u{FFFD}é".unicodeScalars)

    static func mutate(_ text: String, _ random: inout Generator) -> String {
        var scalars = Array(text.unicodeScalars)
        for _ in 0..<Int.random(in: 1...6, using: &random) {
            let choice = Int.random(in: 0..<4, using: &random)
            let index = scalars.isEmpty ? 0 : Int.random(in: 0..<scalars.count, using: &random)
            switch choice {
            case 0 where !scalars.isEmpty: scalars.remove(at: index)
            case 1: scalars.insert(alphabet.randomElement(using: &random)!, at: index)
            case 2 where !scalars.isEmpty: scalars[index] = alphabet.randomElement(using: &random)!
            default:
                if !scalars.isEmpty {
                    let end = min(scalars.count, index + Int.random(in: 1...20, using: &random))
                    scalars.insert(contentsOf: scalars[index..<end], at: index)
                }
            }
        }
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars)
        return result
    }

    static func runFor(seconds: Double, seed: UInt64, _ body: (inout Generator) throws -> Void) rethrows -> Int {
        var random = Generator(state: seed)
        let deadline = Date().addingTimeInterval(seconds)
        var iterations = 0
        while Date() < deadline {
            try body(&random)
            iterations += 1
        }
        return iterations
    }

    @Test func iniParser() {
        let valid = "# c\n[kafka-global]\nbootstrap.servers = a:1\nlinger.ms=5\n[kafka-topic]\nacks = all\n"
        let iterations = Self.runFor(seconds: 2, seed: 1) { random in
            let input = Self.mutate(valid, &random)
            do {
                let properties = try KafkaIniFile.parse(input, path: "fuzz.ini").properties
                #expect(properties.global.allSatisfy { !$0.key.isEmpty })
            } catch let error as KafkaIniFile.ParseError {
                #expect(error.line >= 1 && !error.problem.isEmpty && !error.fix.isEmpty, "\(input.debugDescription)")
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(iterations > 100)
    }

    @Test func configFileParser() {
        let valid =
            "eal: [--no-huge, -m, \"512\"]\nrx-burst: 64\ntopic: pcap\nkafka:\n  linger.ms: 5\nkafka-topic:\n  acks: all\n"
        let iterations = Self.runFor(seconds: 2, seed: 2) { random in
            let input = Self.mutate(valid, &random)
            do {
                let file = try ConfigurationFile.parse(input, path: "fuzz.yaml")
                var resolved = ResolvedConfiguration()
                for (key, value, _) in file.values { try? Setting.byKey[key]!.apply(&resolved, value) }
            } catch {
                let message = "\(error)"
                #expect(message.contains("fuzz.yaml") && message.count > 20, "\(input.debugDescription): \(message)")
            }
        }
        #expect(iterations > 100)
    }

    @Test func dashXParser() {
        let iterations = Self.runFor(seconds: 1, seed: 3) { random in
            let input = Self.mutate("linger.ms=5", &random)
            do {
                let properties = try KafkaConnectionOptions.parseDashX([input])
                #expect(properties.global.count + properties.topic.count == 1)
                // librdkafka judges the property itself: a refusal names it.
                do { try KafkaConfiguration.validate(properties) } catch let error as KafkaPropertyError {
                    #expect(error.description.contains("-X"))
                }
            } catch {
                #expect("\(error)".contains("key=value"))
            }
        }
        #expect(iterations > 100)
    }
}
