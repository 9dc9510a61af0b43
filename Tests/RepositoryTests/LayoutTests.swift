import FastcapaTestSupport
import Foundation
import Testing

/// The README's Layout section and Architecture.md's module table list the
/// tree file for file: a newcomer reads where everything lives, and a moved or
/// added file without its line fails here.
@Suite struct LayoutTests {
    static let root = TestFiles.packageRoot

    /// Source, test and benchmark files, relative to the package root.
    static func files() throws -> [String] {
        var found: [String] = []
        for top in ["Sources", "Tests", "Benchmarks"] {
            let base = root.appendingPathComponent(top)
            guard let walker = FileManager.default.enumerator(atPath: base.path) else { continue }
            while let path = walker.nextObject() as? String {
                let name = (path as NSString).lastPathComponent
                guard
                    name.hasSuffix(".swift") || name.hasSuffix(".c") || name.hasSuffix(".h")
                        || name == "module.modulemap"
                else { continue }
                found.append("\(top)/\(path)")
            }
        }
        return found.sorted()
    }

    /// The text of `file` from the heading `## title` to the next `## ` heading.
    static func section(_ file: String, _ title: String) throws -> String {
        let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
        guard let start = text.range(of: "\n## \(title)\n") else {
            throw LayoutError("\(file) has no '## \(title)' section")
        }
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// File names a section mentions (`Name.swift`, `name.c`, ...).
    static func mentionedFiles(_ text: String) -> Set<String> {
        let pattern = #"[A-Za-z0-9_+.-]+\.(swift|c|h|modulemap)\b"#
        let regex = try! NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).map { String(text[Range($0.range, in: text)!]) })
    }

    @Test(arguments: [("README.md", "Layout"), ("Documentation/Architecture.md", "Modules")])
    func sectionListsEveryFileAndNoOther(file: String, title: String) throws {
        let section = try Self.section(file, title)
        let names = Set(try Self.files().map { ($0 as NSString).lastPathComponent } + ["Package.swift"])
        let mentioned = Self.mentionedFiles(section)
        let missing = names.subtracting(mentioned).sorted()
        let stale = mentioned.subtracting(names).sorted()
        #expect(missing.isEmpty, "\(file) '\(title)' does not mention: \(missing.joined(separator: ", "))")
        #expect(stale.isEmpty, "\(file) '\(title)' mentions files that do not exist: \(stale.joined(separator: ", "))")
    }

    struct LayoutError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
