// swift-tools-version:6.0
import PackageDescription

// SwiftPM cannot read libdpdk.pc (a comment line and `-include rte_config.h`
// break it), so DPDK's include paths and libraries are spelled out here. The
// paths are Debian's (libdpdk-dev); Scripts/install-deps installs them.
let dpdkIncludes = ["/usr/include/dpdk", "/usr/include/x86_64-linux-gnu/dpdk"]
let dpdkCFlags = dpdkIncludes.map { "-I\($0)" }
/// Swift modules that import CDPDK need the same paths for the clang importer.
let dpdkSwiftFlags = dpdkIncludes.flatMap { ["-Xcc", "-I\($0)"] }
let dpdkLibraries = ["rte_eal", "rte_ethdev", "rte_mbuf", "rte_mempool", "rte_ring", "rte_net", "rte_kvargs"]

let package = Package(
    name: "fastcapa",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fastcapa", targets: ["fastcapa"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // C shims: the only C in the project.
        .target(
            name: "CDPDK",
            cSettings: [.unsafeFlags(dpdkCFlags + ["-march=corei7"])],
            swiftSettings: [.unsafeFlags(dpdkSwiftFlags)],
            linkerSettings: dpdkLibraries.map { .linkedLibrary($0) }
        ),
        .target(name: "CRdKafka", linkerSettings: [.linkedLibrary("rdkafka")]),
        .target(name: "CURCU", linkerSettings: [.linkedLibrary("urcu-qsbr")]),

        // Pure Swift: the pcap file format (test fixtures, demo, consumers).
        .target(name: "PcapFormat"),

        // Kafka: properties, producers, delivery reports, the embedded broker.
        .target(name: "FastcapaKafka", dependencies: ["CRdKafka"]),

        // The data path: EAL, ports, rings, receive and transmit workers.
        .target(
            name: "FastcapaCapture",
            dependencies: ["CDPDK", "CURCU", "CRdKafka", "FastcapaKafka"],
            swiftSettings: [.unsafeFlags(dpdkSwiftFlags)]
        ),

        // The control plane: an actor tree supervising producers, statistics, lifecycle.
        .target(
            name: "FastcapaSupervision",
            dependencies: [
                "FastcapaCapture", "FastcapaKafka", "CDPDK",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: [.unsafeFlags(dpdkSwiftFlags)]
        ),

        // The command line.
        .target(
            name: "FastcapaCLI",
            dependencies: [
                "FastcapaCapture", "FastcapaKafka", "FastcapaSupervision", "PcapFormat", "CDPDK",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: [.unsafeFlags(dpdkSwiftFlags)]
        ),
        .executableTarget(
            name: "fastcapa",
            dependencies: ["FastcapaCLI"],
            swiftSettings: [.unsafeFlags(dpdkSwiftFlags)]
        ),

        .testTarget(
            name: "FastcapaTests",
            dependencies: ["FastcapaCLI", "FastcapaKafka", "FastcapaCapture", "FastcapaSupervision", "PcapFormat"],
            exclude: ["Support/alloc_counter.c"],
            swiftSettings: [.unsafeFlags(dpdkSwiftFlags)]
        ),
    ]
)
