import FastcapaCapture
import FastcapaTestSupport
import Foundation
import Testing

/// One lcore layout everywhere: the rule (`LcoreLayout`) that `fastcapa check`
/// and the too-few-lcores refusal print is the one README, Configs/nic.yaml and
/// Deployment.md's table give.
@Suite struct LcoreLayoutTests {
    static func text(_ path: String) throws -> String {
        try String(contentsOf: TestFiles.packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func theRuleLaysOutEachHostSize() {
        let big = LcoreLayout(rings: 2, txWorkers: 1, cpus: Array(0..<8))
        #expect(big.option == "-l 0-4" && big.workerCPUs == [1, 2, 3, 4] && big.dedicated)
        #expect(big.isolation == "isolcpus=1-4 nohz_full=1-4 rcu_nocbs=1-4")
        let two = LcoreLayout(rings: 1, txWorkers: 1, cpus: [0, 1])
        #expect(two.option == "--lcores '0@0,1@1,2@1'" && two.workerCPUs == [1] && !two.dedicated)
        let three = LcoreLayout(rings: 2, txWorkers: 1, cpus: [0, 1, 2])
        #expect(three.option == "--lcores '0@0,1@1,2@1,3@2,4@2'" && three.workerCPUs == [1, 2])
        let one = LcoreLayout(rings: 1, txWorkers: 1, cpus: [3])
        #expect(one.option == "--lcores '(0-2)@3'" && one.isolation == nil)
        // A process confined to CPUs 4-9 gets lcores on those.
        let confined = LcoreLayout(rings: 1, txWorkers: 2, cpus: Array(4...9))
        #expect(confined.option == "-l 4-7" && confined.workerCPUs == [5, 6, 7])
    }

    /// Every row of Deployment.md's table is what the rule gives.
    @Test func deploymentsTableIsTheRule() throws {
        let rows = try Self.text("Documentation/Deployment.md").split(separator: "\n").compactMap { line in
            line.wholeMatch(
                of: /\| ([0-9]+) \| ([0-9]+) × ([0-9]+) \| ([0-9]+) \| `([^`]+)` \| (?:`([^`]+)`|none) \|.*/
            )
        }
        #expect(rows.count >= 5, "Deployment.md's \"Cores\" table")
        for row in rows {
            let cpus = Int(row.1)!
            let layout = LcoreLayout(rings: Int(row.2)! * Int(row.3)!, txWorkers: Int(row.4)!, cpus: Array(0..<cpus))
            #expect(String(row.5) == layout.option, "\(row.0)")
            #expect(row.6.map(String.init) == layout.isolation, "\(row.0)")
        }
    }

    /// README's 2-core example and nic.yaml's 2-queue NIC are the rule's answers, and nic.yaml
    /// does not say librdkafka's threads share lcore 0's CPU (`--control-cores auto` moves them).
    @Test func readmeAndNicYamlGiveTheRule() throws {
        let readme = try Self.text("README.md")
        let two = LcoreLayout(rings: 1, txWorkers: 1, cpus: [0, 1])
        #expect(readme.contains("how to share cores (`\(two.option)` on 2 cores"), "README's Lcores paragraph")
        let twoQueues = LcoreLayout(rings: 2, txWorkers: 1, cpus: [0, 1])
        #expect(readme.contains(twoQueues.option.replacingOccurrences(of: "--lcores '", with: "--lcores='")))
        #expect(!readme.contains("(0-2)@(0,1)"))

        let nic = try Self.text("Configs/nic.yaml")
        let big = LcoreLayout(rings: 2, txWorkers: 1, cpus: Array(0..<16))
        #expect(nic.contains("  - \"-l\"\n  - \"\(big.option.dropFirst(3))\""), "nic.yaml's eal: list")
        #expect(nic.contains(try #require(big.isolation)))
        #expect(!nic.contains("inherit"), "nic.yaml still says the control threads inherit lcore 0's CPUs")
        for path in ["Documentation/Troubleshooting.md", "Documentation/Operations.md"] {
            #expect(!(try Self.text(path)).contains("(0-2)@(0,1)"), "\(path)")
        }
    }
}
