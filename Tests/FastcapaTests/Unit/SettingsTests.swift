@testable import FastcapaCLI
import FastcapaCapture
import Testing

@Suite struct SettingsTests {
    @Test func fastcapaDefaults() throws {
        let settings = try CaptureOptions.parse([]).resolve().settings
        #expect(settings.portMask == 0x01)
        #expect(settings.rxBurst == 32)
        #expect(settings.txBurst == 256)
        #expect(settings.rxDescriptors == 1024)
        #expect(settings.ringSize == 2048)
        #expect(settings.rxQueues == 1)
        #expect(settings.topic == "pcap")
        #expect(settings.txWorkersPerRing == 1)
        #expect(settings.ringFull == .drop)
        #expect(settings.partitioning == .default)
        #expect(settings.produceCall == .batch)
        #expect(settings.deliveryReports == .lcore)
        #expect(try CaptureOptions.parse([]).resolve().controlCores == .auto)
    }

    @Test func controlCoresParseAndPrintBack() throws {
        #expect(try ControlCores(parsing: "auto") == .auto)
        #expect(try ControlCores(parsing: "main-lcore") == .mainLcore)
        #expect(try ControlCores(parsing: "0") == .cpus([0]))
        #expect(try ControlCores(parsing: " 5-7,0 ,2") == .cpus([0, 2, 5, 6, 7]))
        #expect(try ControlCores(parsing: "1,1-2") == .cpus([1, 2]))
        #expect(ControlCores.cpus([0, 2, 5, 6, 7]).description == "0,2,5-7")
        for bad in ["", "x", "1-", "-1", "3-1", "1,,2", "1.5", "99999"] {
            #expect(throws: CaptureSettings.Invalid.self, "'\(bad)'") { try ControlCores(parsing: bad) }
        }
        let resolved = try CaptureOptions.parse(["--control-cores", "0-1"]).resolve()
        #expect(resolved.controlCores == .cpus([0, 1]))
        #expect(resolved.yaml().contains("control-cores: \"0-1\""))
    }

    @Test func fastcapaShortFlags() throws {
        let options = try CaptureOptions.parse(["-p", "0x3", "-b", "64", "-w", "512", "-d", "2048", "-x", "4096", "-q", "2", "-t", "packets"])
        let settings = try options.resolve().settings
        #expect(settings.ports == [0, 1])
        #expect(settings.rxBurst == 64 && settings.txBurst == 512 && settings.rxDescriptors == 2048)
        #expect(settings.ringSize == 4096 && settings.rxQueues == 2 && settings.topic == "packets")
        #expect(settings.workerLcoresNeeded == 8)
    }

    @Test(arguments: ["1", "0x1", "0X1", "ff", "0xFFFFFFFFFFFFFFFF"])
    func portMasksAreHex(_ text: String) throws {
        #expect(try Setting.parsePortMask(text) != 0)
    }

    @Test(arguments: ["", "0x", "0x0", "zz", "-1", "0x1FFFFFFFFFFFFFFFF", "1 2"])
    func badPortMasksAreRejected(_ text: String) {
        #expect(throws: SettingError.self) { try Setting.parsePortMask(text) }
    }

    @Test(arguments: [0, 3, 1000, 1 << 29, -8])
    func ringSizeMustBeAPowerOfTwo(_ size: Int) {
        var settings = CaptureSettings()
        settings.ringSize = size
        #expect(throws: CaptureSettings.Invalid.self) { try settings.validate() }
    }

    @Test func everyRangeIsChecked() {
        let mutations: [(inout CaptureSettings) -> Void] = [
            { $0.rxBurst = 0 }, { $0.rxBurst = 1025 }, { $0.txBurst = 0 }, { $0.rxDescriptors = 0 },
            { $0.rxQueues = 0 }, { $0.txWorkersPerRing = 0 }, { $0.snapLength = 0 }, { $0.maxRebursts = -1 },
            { $0.queueFullRetries = -1 }, { $0.idleSleepMaxMicros = -1 }, { $0.topic = "" }, { $0.topic = ".." },
            { $0.topic = String(repeating: "a", count: 250) }, { $0.topic = "a/b" }, { $0.portMask = 0 },
        ]
        for mutate in mutations {
            var settings = CaptureSettings()
            mutate(&settings)
            #expect(throws: CaptureSettings.Invalid.self) { try settings.validate() }
        }
        #expect(throws: Never.self) { try CaptureSettings().validate() }
    }

    @Test func dashXSplitsTopicProperties() throws {
        let options = try CaptureOptions.parse(["-X", "linger.ms=5", "-X", "topic.acks=all", "-X", "client.rack=a=b"])
        let properties = try options.resolve().kafka
        #expect(properties.globalValue("linger.ms") == "5")
        #expect(properties.globalValue("client.rack") == "a=b")
        #expect(properties.topic.map(\.key) == ["acks"])
        #expect(!properties.hasBrokers)
    }

    @Test func argumentsSplitAtTheFirstDoubleDash() {
        let split = FastcapaMain.splitArguments(["--vdev=x", "-l", "0-2", "--", "-p", "0x1", "--", "y"])
        #expect(split.eal == ["--vdev=x", "-l", "0-2"])
        #expect(split.application == ["-p", "0x1", "--", "y"])
        #expect(FastcapaMain.splitArguments(["-p", "1"]).eal.isEmpty)
    }

    @Test func mempoolIsSizedFromTheSettings() {
        var settings = CaptureSettings()
        let one = MempoolSizing(settings: settings, ports: 1, lcores: 3).mbufs
        // queue descriptors + ring + bursts in flight + caches, plus a quarter for chains
        let needed = (1024 + 2048 + 32 * 5 + 256) + 3 * 256
        #expect(one >= needed + needed / 4)
        #expect((one + 1) & one == 0, "2^n - 1")
        settings.rxQueues = 4
        settings.ringSize = 65536
        #expect(MempoolSizing(settings: settings, ports: 2, lcores: 17).mbufs > 8 * 65536)
    }
}
