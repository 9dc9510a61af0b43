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

    /// Each file the README's Layout block names is where the block puts it: under the folder whose
    /// line it is on (indented two spaces a level), so a moved file cannot keep a stale place.
    @Test func theReadmePutsEveryFileInItsFolder() throws {
        let section = try Self.section("README.md", "Layout")
        let folderLine = try Regex(#"^( *)([A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*/)(?: |$)"#)
        var folders: [String] = []
        var placed = 0
        for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
            var rest = Substring(line)
            if let match = line.firstMatch(of: folderLine) {
                let depth = match.output[1].substring!.count / 2
                folders = Array(folders.prefix(depth)) + [String(match.output[2].substring!)]
                rest = line[match.range.upperBound...]
            }
            let folder = folders.joined()
            for name in Self.mentionedPaths(String(rest))
            where folder.isEmpty || Self.treeRoots.contains(where: folder.hasPrefix) {
                let path = folder + name
                #expect(
                    FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(path).path),
                    "README's Layout puts \(name) in \(folder.isEmpty ? "the top folder" : folder), where it is not"
                )
                placed += 1
            }
        }
        #expect(placed > 100)
    }

    /// Each file Architecture.md's module table names is in that module's folder.
    @Test func theModuleTablePutsEveryFileInItsModule() throws {
        let section = try Self.section("Documentation/Architecture.md", "Modules")
        var folder: String?
        var placed = 0
        for line in section.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count > 3, !cells[2].hasPrefix("---") else { continue }
            // `Module`, or `product` (`Benchmarks/Folder`); empty: the row above's.
            let quoted = cells[1].matches(of: /`([^`]+)`/).map { String($0.output.1) }
            if let module = quoted.first {
                let product = quoted.dropFirst().last { $0.contains("/") }
                folder = product.map { $0 + "/" } ?? "Sources/\(module)/"
            }
            guard let folder, cells[1] != "module" else { continue }
            for name in Self.mentionedPaths(cells[2]) {
                #expect(
                    FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(folder + name).path),
                    "Architecture.md's module table puts \(name) in \(folder), where it is not"
                )
                placed += 1
            }
        }
        #expect(placed > 100)
    }

    static let treeRoots = ["Sources/", "Tests/", "Benchmarks/"]

    /// Paths a text names (`Sub/Name.swift`, `include/name.h`, `Package.swift`), as written.
    static func mentionedPaths(_ text: String) -> [String] {
        text.matches(of: /[A-Za-z0-9_+.-]+(?:\/[A-Za-z0-9_+.-]+)*\.(?:swift|c|h|modulemap)\b/)
            .map { String(text[$0.range]) }
    }

    struct LayoutError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
