// swift-tools-version:6.2
import PackageDescription

// SwiftPM cannot read libdpdk.pc (a comment line and `-include rte_config.h`
// break it), so DPDK's include paths, flags and libraries are spelled out
// here. The paths are Debian's (libdpdk-dev); Scripts/install-deps installs
// them. DPDK's headers need the instruction set its libraries were built for.
#if arch(x86_64)
let multiarch = "x86_64-linux-gnu"
let dpdkMachineFlags = ["-march=corei7"]
#elseif arch(arm64)
let multiarch = "aarch64-linux-gnu"
let dpdkMachineFlags = ["-march=armv8-a+crc"]
#else
let multiarch = "unsupported"
let dpdkMachineFlags: [String] = []
#endif
let dpdkIncludes = ["/usr/include/dpdk", "/usr/include/\(multiarch)/dpdk"]
/// Swift modules that import CDPDK, directly or through another module, need
/// the same paths for the clang importer.
let dpdkSwiftFlags: [SwiftSetting] = [.unsafeFlags(dpdkIncludes.flatMap { ["-Xcc", "-I\($0)"] })]
let dpdkLibraries = ["rte_eal", "rte_ethdev", "rte_mbuf", "rte_mempool", "rte_ring", "rte_net", "rte_kvargs", "rte_bpf", "rte_pdump", "rte_hash"]

/// A package build of a given version (Scripts/package, FASTCAPA_VERSION=1.2.0): the binary reports it
/// instead of Version.swift's. Only CFastcapaVersion's one C file sees the define, so another version
/// recompiles that file and links again. Scripts/package checks the form first; this guard keeps a
/// stray value from reaching the compiler as C.
let versionOverride: [CSetting] = {
    guard let version = Context.environment["FASTCAPA_VERSION"], !version.isEmpty else { return [] }
    let allowed = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-+~")
    guard version.allSatisfy(allowed.contains) else {
        fatalError("FASTCAPA_VERSION=\(version): use a version like 1.2.0 or 1.2.0-rc.1 (letters, digits, . - + ~)")
    }
    return [.define("FASTCAPA_VERSION", to: "\"\(version)\"")]
}()

/// The test seams (`TestingHooks`: --testing-fault-signals, FASTCAPA_TESTING_*, FASTCAPA_LEVER_SPLIT_WORKERS) are
/// compiled into debug builds, and into a release build only when FASTCAPA_TESTING_HOOKS=1 is in the build's
/// environment (Scripts/bench): the shipped binary has none of them.
let testingHooks: SwiftSetting =
    Context.environment["FASTCAPA_TESTING_HOOKS"] == "1"
    ? .define("FASTCAPA_TESTING_HOOKS") : .define("FASTCAPA_TESTING_HOOKS", .when(configuration: .debug))

/// Every Swift target: warnings are errors.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error), testingHooks]
let strictC: [CSetting] = [.unsafeFlags(["-Wall", "-Werror"])]

let package = Package(
    name: "fastcapa",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fastcapa", targets: ["fastcapa"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // MARK: C: wrappers and shared layouts, no policy.

        // DPDK wrappers (mbuf accessors, macros as functions).
        .target(
            name: "CDPDK",
            cSettings: strictC + [.unsafeFlags(dpdkIncludes.map { "-I\($0)" } + dpdkMachineFlags)],
            swiftSettings: dpdkSwiftFlags,
            linkerSettings: dpdkLibraries.map { .linkedLibrary($0) }
        ),
        // Linux and glibc wrappers: interface ioctls and ethtool, packet sockets, CPU sets, threads.
        .target(name: "CLinux", cSettings: strictC),
        // What the lcores and the control plane share: counter blocks, the
        // producer context, the latency histogram, relaxed atomics.
        .target(name: "CFastcapaShared", cSettings: strictC),
        // librdkafka and its mock cluster.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        // libpcap: the tcpdump-expression compiler and its offline matcher.
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // liburcu's QSBR flavour: the read side inline, the update side out of line.
        .target(name: "CURCU", cSettings: strictC, linkerSettings: [.linkedLibrary("urcu-qsbr")]),
        // The version a package build asks for (FASTCAPA_VERSION), imported by FastcapaCLI alone.
        .target(name: "CFastcapaVersion", cSettings: strictC + versionOverride),

        // MARK: Swift modules, from the bottom up.

        // The pcap and pcapng file formats.
        .target(name: "PcapFormat", swiftSettings: strict),
        // Every libpcap call: tcpdump expressions compiled to classic BPF, and
        // matched against frames (the probe's capture filter, and `consume --filter`).
        .target(name: "FastcapaFilter", dependencies: ["CPcap"], swiftSettings: strict),
        // Everything that owns librdkafka: the message contract, configuration, producer
        // generations and their callbacks, delivery-report threads, the reader, the embedded broker.
        .target(name: "FastcapaKafka", dependencies: ["CRdKafka", "CFastcapaShared"], swiftSettings: strict),
        // Benchmark and testing aids beside it: the limit producer, watermarks, fault injection.
        .target(name: "FastcapaKafkaTools", dependencies: ["FastcapaKafka", "CRdKafka"], swiftSettings: strict),
        // The data path: EAL, ports, rings, receive and transmit workers, the pipeline.
        .target(
            name: "FastcapaCapture",
            dependencies: ["CDPDK", "CLinux", "CFastcapaShared", "CURCU", "FastcapaKafka", "FastcapaFilter"],
            swiftSettings: strict + dpdkSwiftFlags
        ),
        // The sampler and its snapshots (with the health they carry); statistics table,
        // accounting, Prometheus export, the metrics/health server.
        .target(
            name: "FastcapaObservability",
            dependencies: [
                "FastcapaCapture", "FastcapaKafka",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict + dpdkSwiftFlags
        ),
        // The control plane's actor tree: capture supervisor, producer supervisors, ProducerHealth,
        // acting on the sampler's snapshots.
        .target(
            name: "FastcapaSupervision",
            dependencies: [
                "FastcapaCapture", "FastcapaKafka", "FastcapaObservability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict + dpdkSwiftFlags
        ),
        // The command line: commands, configuration, the capture run, signals.
        .target(
            name: "FastcapaCLI",
            dependencies: [
                "FastcapaCapture", "FastcapaKafka", "FastcapaKafkaTools", "FastcapaSupervision",
                "FastcapaObservability", "FastcapaFilter", "PcapFormat", "CFastcapaVersion",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict + dpdkSwiftFlags
        ),
        .executableTarget(name: "fastcapa", dependencies: ["FastcapaCLI"], swiftSettings: strict + dpdkSwiftFlags),

        // Micro-benchmarks of hot-loop calls, as ratios within one run (Scripts/bench runs them).
        .executableTarget(
            name: "fastcapa-microbench",
            dependencies: ["CURCU", "CDPDK", "FastcapaCapture"],
            path: "Benchmarks/Microbench",
            swiftSettings: strict + dpdkSwiftFlags
        ),
        // MARK: Tests

        // Captures built in code, the shared corpus, scratch folders.
        .target(name: "FastcapaTestSupport", dependencies: ["PcapFormat"], path: "Tests/FastcapaTestSupport"),
        .testTarget(name: "PcapFormatTests", dependencies: ["PcapFormat", "FastcapaTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "FastcapaFilterTests",
            dependencies: ["FastcapaFilter", "FastcapaTestSupport", "PcapFormat"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FastcapaKafkaTests",
            dependencies: [
                "FastcapaKafka", "FastcapaKafkaTools", "CFastcapaShared", "CRdKafka", "FastcapaTestSupport", "PcapFormat",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FastcapaCaptureTests",
            dependencies: ["CDPDK", "CLinux", "FastcapaCapture", "FastcapaFilter", "FastcapaTestSupport", "PcapFormat"],
            // It builds mbufs with DPDK's inline functions, which need DPDK's instruction set.
            swiftSettings: strict + dpdkSwiftFlags + [.unsafeFlags(dpdkMachineFlags.flatMap { ["-Xcc", $0] })]
        ),
        .testTarget(
            name: "FastcapaSupervisionTests", dependencies: ["FastcapaSupervision"], swiftSettings: strict + dpdkSwiftFlags
        ),
        .testTarget(
            name: "FastcapaObservabilityTests",
            dependencies: ["FastcapaObservability", "FastcapaTestSupport"],
            swiftSettings: strict + dpdkSwiftFlags
        ),
        .testTarget(
            name: "FastcapaCLITests", dependencies: ["FastcapaCLI", "FastcapaKafka", "FastcapaCapture", "FastcapaTestSupport"],
            swiftSettings: strict + dpdkSwiftFlags
        ),
        // The README and Architecture.md list the tree file for file.
        .testTarget(name: "RepositoryTests", dependencies: ["FastcapaTestSupport"], swiftSettings: strict),
        // Captures run as child processes (rte_eal_init works once per process).
        .testTarget(
            name: "FastcapaEndToEndTests",
            dependencies: ["PcapFormat", "FastcapaKafka", "FastcapaCapture", "FastcapaTestSupport", "CRdKafka"],
            exclude: [
                "Support/alloc_counter.c", "Support/call_threads.c", "Support/heap_sampler.c", "Support/tsan_threads.c",
                "Support/deny_write_execute.c", "Support/create_topic.c",
            ],
            swiftSettings: strict + dpdkSwiftFlags
        ),
    ]
)
