import FastcapaCapture
import Testing

@testable import FastcapaCLI

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
        #expect(settings.partitioning == .roundRobin)
        #expect(settings.produceCall == .batch)
        #expect(settings.deliveryReports == .lcore)
        #expect(try CaptureOptions.parse([]).resolve().controlCores == .auto)
    }

    @Test func controlCoresPrintBackInTheConfiguration() throws {
        let resolved = try CaptureOptions.parse(["--control-cores", "0-1"]).resolve()
        #expect(resolved.controlCores == .cpus([0, 1]))
        #expect(resolved.yaml().contains("control-cores: \"0-1\""))
    }

    @Test func fastcapaShortFlags() throws {
        let options = try CaptureOptions.parse([
            "-p", "0x3", "-b", "64", "-w", "512", "-d", "2048", "-x", "4096", "-q", "2", "-t", "packets",
        ])
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

    /// Every setting the data path refuses names a config key the command line
    /// knows, so the message can name its flags.
    @Test func refusedSettingsAreNamedWithTheirFlags() throws {
        for arguments in [
            ["-b", "0"], ["-x", "3"], ["-q", "0"], ["--snap-length", "0"], ["--idle-sleep-max-us=-1"],
        ] {
            #expect {
                try CaptureOptions.parse(arguments).resolve()
            } throws: { error in
                let message = "\(error)"
                let flag = arguments[0].split(separator: "=")[0]
                return message.contains(flag) && message.contains("Use ")
            }
        }
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
}
