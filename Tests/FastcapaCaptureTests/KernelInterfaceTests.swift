import CDPDK
import CLinux
import FastcapaTestSupport
import Glibc
import Testing

@testable import FastcapaCapture

@Suite struct DeviceArgumentsTests {
    @Test func virtualDevicesAreReadFromEitherFormOfTheOption() {
        let devices = DeviceArguments.virtualDevices(
            in: [
                "--no-huge", "--vdev=net_af_packet0,iface=eth1,qpairs=2", "-l", "0-2", "--vdev",
                "net_pcap1,rx_iface=a,rx_iface=b", "--vdev",
            ]
        )
        #expect(devices.map(\.name) == ["net_af_packet0", "net_pcap1"])
        #expect(devices[0]["iface"] == "eth1" && devices[0]["qpairs"] == "2" && devices[0]["framesz"] == nil)
        #expect(devices[1].values("rx_iface") == ["a", "b"])
        #expect(devices[0].isAfPacket && !devices[1].isAfPacket)
        let larger = devices[0].setting("framesz", to: "9104").setting("qpairs", to: "1")
        #expect(larger.vdev == "--vdev=net_af_packet0,iface=eth1,qpairs=1,framesz=9104")
    }
}

@Suite struct AfPacketRingTests {
    @Test func theDriversDefaultsHold1982BytesOfAFrame() {
        let ring = AfPacketRing()
        #expect(ring.frameSize == 2048 && ring.frameCount == 512 && ring.blockSize == Int(getpagesize()))
        // The issue's measurement: frames longer than 1,982 bytes came back as 1,982 bytes.
        #expect(ring.frameBytes == 1982)
        // The driver refuses a pool whose data room (less headroom) is below framesz − 32.
        #expect(ring.dataRoom == 2048 - 32 + Int(RTE_PKTMBUF_HEADROOM))
        #expect(AfPacketRing(frameSize: 16384, blockSize: 16384).dataRoom == 16352 + Int(RTE_PKTMBUF_HEADROOM))
    }

    @Test func theLargestSlotFillsA16BitDataRoom() {
        #expect(AfPacketRing.largestFrameSize == 65424 && AfPacketRing.largestSuggestedFrameSize == 65024)
        #expect(AfPacketRing(frameSize: AfPacketRing.largestFrameSize, blockSize: 65536).dataRoom <= Int(UInt16.max))
        #expect(
            AfPacketRing(frameSize: AfPacketRing.largestFrameSize + 16, blockSize: 65536).dataRoom > Int(UInt16.max)
        )
    }

    @Test func aSlotIsSizedToHoldAFrameAndItsHeader() throws {
        // MTU 9000: frames up to 9,022 bytes, so a slot must hold 9,023.
        #expect(AfPacketRing.frameSize(holding: 9023) == 9216)
        #expect(AfPacketRing(frameSize: 9216).frameBytes == 9150)
        let device = DeviceArguments(vdev: "net_af_packet0,iface=x,framesz=9216,blocksz=36864")
        let ring = try AfPacketRing(device)
        #expect(ring == AfPacketRing(frameSize: 9216, blockSize: 36864))
        #expect(throws: Never.self) { try ring.check(device: device) }
    }

    /// The blocks a ring needs, in 4 KiB pages.
    @Test(.enabled(if: getpagesize() == 4096, "the sizes are for 4 KiB pages"))
    func blocksAreSizedInPages() {
        #expect(AfPacketRing().repaired(holding: 9022) == AfPacketRing(frameSize: 9216, blockSize: 36864))
        #expect(AfPacketRing.blockSize(for: 65024) == 520_192 && AfPacketRing.blockSize(for: 1536) == 12288)
        #expect(AfPacketRing().repaired(holding: 1522) == AfPacketRing())
    }

    /// A refused ring's fix is one whole `--vdev`, a command to run (a bare "Use blocksz=16384." is none),
    /// whose ring passes every check and holds the interface's frames: `framesz=16384` on a veth of MTU 9000
    /// gets the `blocksz` it needs, and a slot too short for the frames gets slot and block at once, so no
    /// second refusal follows the first.
    @Test(.enabled(if: getpagesize() == 4096, "the sizes are for 4 KiB pages"))
    func aRefusalNamesOneDeviceWhoseRingPassesAndHoldsTheInterfacesFrames() throws {
        let device = DeviceArguments(vdev: "net_af_packet0,iface=veth1,framesz=16384")
        let error = #expect(throws: AfPacketRing.RingError.self) {
            try AfPacketRing(device).check(device: device, largestFrame: 9022)
        }
        #expect(error?.fix == "Use --vdev=net_af_packet0,iface=veth1,framesz=16384,blocksz=16384.")
        let small = DeviceArguments(vdev: "net_af_packet0,iface=veth1,framesz=8192")
        let enlarged = #expect(throws: AfPacketRing.RingError.self) {
            try AfPacketRing(small).check(device: small, largestFrame: 9022)
        }
        #expect(enlarged?.fix == "Use --vdev=net_af_packet0,iface=veth1,framesz=9216,blocksz=36864.")
        // Every ring, repaired for every interface, passes and holds its frames whole when any slot can.
        var failures: [String] = []
        for frameSize in Array(stride(from: 16, through: 70_000, by: 997)) + [2048, 9216, 16384, 65424, 65440] {
            for blockSize in [4096, 5000, 8192, 36864, 65536] {
                for frameCount in [1, 7, 512, 1000] {
                    for largestFrame in [nil, 1522, 9022, 16000, 65558] {
                        let ring = AfPacketRing(frameSize: frameSize, blockSize: blockSize, frameCount: frameCount)
                        let repaired = ring.repaired(holding: largestFrame)
                        let label = "\(ring) for \(largestFrame.map(String.init) ?? "any") → \(repaired)"
                        do throws(AfPacketRing.RingError) {
                            try repaired.check(device: repaired.arguments(of: device), largestFrame: largestFrame)
                        } catch {
                            failures.append("\(label): \(error)")
                        }
                        if let largestFrame, largestFrame < AfPacketRing.largestSuggestedFrameSize - 66,
                            repaired.frameBytes <= largestFrame
                        {
                            failures.append("\(label) cuts frames")
                        }
                        if repaired.frameCount < frameCount { failures.append("\(label) has fewer frames") }
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count): \(failures.prefix(5))")
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        var arguments: String
        var mentions: [String]
        var testDescription: String { arguments }
    }

    @Test(
        .enabled(if: getpagesize() == 4096, "the sizes are for 4 KiB pages"),
        arguments: [
            Refusal(
                arguments: "framesz=5000",
                mentions: [
                    "framesz=5000", "multiple of 16",
                    "Use --vdev=net_af_packet0,iface=eth1,framesz=5120,blocksz=20480.",
                ]
            ),
            Refusal(
                arguments: "framesz=64",
                mentions: ["framesz=64", "Use --vdev=net_af_packet0,iface=eth1,framesz=128."]
            ),
            Refusal(
                arguments: "framesz=65536,blocksz=65536",
                mentions: [
                    "65,535 bytes", "Use --vdev=net_af_packet0,iface=eth1,framesz=65024,blocksz=520192 ", "net_pcap0",
                ]
            ),
            Refusal(
                arguments: "framesz=8192",
                mentions: [
                    "blocksz=4096 (the driver's default", "smaller than framesz=8192",
                    "Use --vdev=net_af_packet0,iface=eth1,framesz=8192,blocksz=8192.",
                ]
            ),
            Refusal(
                arguments: "blocksz=5000",
                mentions: ["blocksz=5000", "page size", "Use --vdev=net_af_packet0,iface=eth1,blocksz=4096."]
            ),
            Refusal(
                arguments: "framesz=9104,blocksz=12288",
                mentions: [
                    "blocksz=12288", "reads slot i at i × framesz",
                    "Use --vdev=net_af_packet0,iface=eth1,framesz=9216,blocksz=36864.",
                ]
            ),
            Refusal(
                arguments: "framesz=1024,framecnt=510",
                mentions: [
                    "framecnt=510", "4 frames a block",
                    "Use --vdev=net_af_packet0,iface=eth1,framesz=1024,framecnt=512.",
                ]
            ),
            Refusal(
                arguments: "framesz=big",
                mentions: [
                    "framesz=big", "not a positive number", "Use --vdev=net_af_packet0,iface=eth1,framesz=2048.",
                ]
            ),
            Refusal(arguments: "framecnt=0", mentions: ["framecnt=0", "not a positive number"]),
        ]
    )
    func ringsTheKernelRefusesAreNamedWithTheFix(_ refusal: Refusal) {
        let device = DeviceArguments(vdev: "net_af_packet0,iface=eth1," + refusal.arguments)
        do throws(AfPacketRing.RingError) {
            try AfPacketRing(device).check(device: device)
            Issue.record("\(refusal.arguments) was accepted")
        } catch {
            for text in refusal.mentions {
                #expect(error.description.contains(text), "'\(text)' in: \(error.description)")
            }
            #expect(error.description.hasPrefix("net_af_packet0: "))
        }
    }
}

@Suite struct ReceivePathTests {
    static func path(_ kind: ReceivePath.Kind, mtu: Int = 1500) -> ReceivePath {
        ReceivePath(
            port: 0,
            driver: "test",
            device: DeviceArguments(vdev: "net_test0"),
            kind: kind,
            interfaces: [KernelInterface(name: "eth9", mtu: mtu)]
        )
    }

    @Test func onlyKernelInterfacesHaveACutLength() {
        #expect(Self.path(.afPacket(AfPacketRing())).cutLength == 1982)
        #expect(Self.path(.pcapInterface).cutLength == 16128)
        #expect(Self.path(.pcapFile).cutLength == Int.max)
        #expect(Self.path(.device(scatters: true)).cutLength == Int.max)
    }

    @Test func afPacketPoolsHoldASlotPerMbufAndNoDescriptors() {
        let settings = CaptureSettings()
        let standard = MempoolSizing(settings: settings, path: Self.path(.device(scatters: true)), lcores: 3)
        let ring = AfPacketRing(frameSize: 16384, blockSize: 16384)
        let afPacket = MempoolSizing(settings: settings, path: Self.path(.afPacket(ring)), lcores: 3)
        #expect(standard.dataRoom == Int(CDPDK_RTE_MBUF_DEFAULT_BUF_SIZE()))
        #expect(afPacket.dataRoom == ring.dataRoom)
        // No descriptors and no chains: ring + bursts + caches, 2,464 + 768, rounded to 2^12 − 1.
        #expect(afPacket.mbufs == 4095 && standard.mbufs == 8191)
        #expect(afPacket.bytes == 4095 * (16480 + MempoolSizing.overheadPerMbuf))
        // The default slot still gets the default data room.
        #expect(
            MempoolSizing(settings: settings, path: Self.path(.afPacket(AfPacketRing())), lcores: 3).dataRoom == 2176
        )
    }

    @Test func warningsNameTheFaithfulAlternative() {
        let warnings = Self.path(.afPacket(AfPacketRing())).warnings
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("--vdev=net_pcap0,iface=eth9") == true)
        #expect(warnings.first?.contains("PACKET_FANOUT_FLAG_DEFRAG") == true)
        #expect(Self.path(.pcapInterface).warnings.isEmpty)
    }
}

@Suite struct KernelInterfaceTests {
    @Test func loopbackHasAnMTU() throws {
        let lo = try KernelInterface.read("lo")
        #expect(lo.mtu >= 1500)
        #expect(lo.largestFrame == lo.mtu + 22)
        #expect(KernelInterface.index(of: "lo") > 0)
    }

    /// Hardware GRO (`rx-gro-hw`, bnxt, qede…) merges frames as GRO and LRO do, into frames the wire never
    /// carried: the interface's features are read by name, and the three are refused alike.
    @Test func hardwareGROIsReadAndRefusedLikeGRO() throws {
        let features = try #require(KernelInterface.features("lo"), "ethtool's feature names of lo")
        #expect(
            features.keys.contains("rx-gro-hw") && features.keys.contains("rx-gro") && features.keys.contains("rx-lro")
        )
        #expect(try KernelInterface.read("lo").aggregation == KernelInterface.receiveAggregation(features))
        #expect(
            KernelInterface.receiveAggregation(["rx-gro-hw": true, "rx-gro": false, "rx-lro": false]) == ["rx-gro-hw"]
        )
        #expect(KernelInterface.receiveAggregation(["rx-gro": true, "rx-lro": true]) == ["gro", "lro"])
        #expect(KernelInterface.receiveAggregation(["rx-gro-list": true, "rx-gro-hw": false]).isEmpty)

        let path = ReceivePathTests.path(.pcapInterface)
        let merging = KernelInterface(name: "eth9", mtu: 1500, aggregation: ["rx-gro-hw"])
        let error = #expect(throws: CaptureError.self) { try path.checkAggregation(merging) }
        #expect(error?.description.contains("hardware GRO (rx-gro-hw) on") == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("ethtool -K eth9 gro off lro off rx-gro-hw off.") == true)
        #expect(throws: Never.self) { try path.checkAggregation(KernelInterface(name: "eth9", mtu: 1500)) }
    }

    @Test func aMissingInterfaceIsNamedWithTheFix() {
        let error = #expect(throws: CaptureError.self) { try KernelInterface.read("fcnosuch0") }
        #expect(error?.description.contains("fcnosuch0") == true && error?.description.contains("ip link") == true)
    }
}

@Suite struct KernelReassemblyTests {
    @Test func fragmentsAreReassembledAsTheDatagramWasBuilt() {
        for datagram in SyntheticCaptures.fragmentedDatagrams() {
            let fragments = datagram.link.ipv4Fragments(datagram.packet, count: datagram.fragments)
            #expect(fragments.allSatisfy(SyntheticCaptures.isIPv4Fragment))
            let result = SyntheticCaptures.reassemblingIPv4(fragments.reversed())
            #expect(result.frames == [datagram.reassembled] && result.datagrams == 1 && result.incomplete == 0)
        }
        let incomplete = SyntheticCaptures.incompleteDatagram
        let sent = incomplete.link.ipv4Fragments(incomplete.packet, count: 3).dropLast()
        let other = FrameBuilder().ip(
            from: "10.0.0.1",
            to: "10.0.0.2",
            .udp(UDPDatagram(sourcePort: 1, destinationPort: 2))
        )
        let result = SyntheticCaptures.reassemblingIPv4(Array(sent) + [other])
        #expect(result.frames == [other] && result.datagrams == 0 && result.incomplete == 1)
        #expect(!SyntheticCaptures.isIPv4Fragment(other))
    }

    @Test func theMixHoldsWhatAnMTU9000InterfaceCarries() {
        let frames = SyntheticCaptures.kernelInterfaceMix(mtu: 9000)
        #expect(frames.allSatisfy { (14...9018).contains($0.count) })
        #expect(frames.contains { $0.count == 9014 } && frames.contains { $0.count == 9018 })
        #expect(frames.contains { $0.count == 14 } && frames.contains { $0.count == 42 })
        #expect(SyntheticCaptures.kernelInterfaceMix(mtu: 9000) == frames, "deterministic")
    }
}

@Suite struct HeapThresholdsTests {
    @Test func anOperatorsAllocatorTunablesWin() {
        #expect(HeapThresholds.applies(tunables: nil))
        #expect(HeapThresholds.applies(tunables: "glibc.pthread.rseq=0"))
        #expect(!HeapThresholds.applies(tunables: "glibc.malloc.trim_threshold=1048576"))
        #expect(!HeapThresholds.applies(tunables: "glibc.pthread.rseq=0:glibc.malloc.arena_max=2"))
    }

    @Test func glibcAcceptsBothThresholds() {
        #expect(CLinux_mallopt(CLinux_M_MMAP_THRESHOLD(), HeapThresholds.mmapThreshold) == 1)
        #expect(CLinux_mallopt(CLinux_M_TRIM_THRESHOLD(), HeapThresholds.trimThreshold) == 1)
    }
}
