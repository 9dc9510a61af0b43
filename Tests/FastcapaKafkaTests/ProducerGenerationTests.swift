import CFastcapaShared
import FastcapaKafka
import FastcapaKafkaTools
import Foundation
import Synchronization
import Testing

/// Producer generations on librdkafka's mock cluster, in this process: what the
/// transmit lcore does (produce and poll through the endpoint), what a restart
/// does (retire into a successor), what a stop does (flush or purge).
@Suite(.serialized) struct ProducerGenerationTests {
    /// A worker's counters, as the pipeline allocates them.
    final class Counters: @unchecked Sendable {
        let pointer = UnsafeMutablePointer<fastcapa_tx_counters>.allocate(capacity: 1)
        init() { pointer.initialize(to: fastcapa_tx_counters()) }
        deinit { pointer.deallocate() }
        var delivered: UInt64 { fastcapa_counter_load(&pointer.pointee.delivered) }
        var failed: UInt64 { fastcapa_counter_load(&pointer.pointee.delivery_failed) }
        var reproduced: UInt64 { fastcapa_counter_load(&pointer.pointee.reproduced) }
        var latencyCount: UInt64 { fastcapa_counter_load(&pointer.pointee.latency_count) }
    }

    static func properties(_ broker: EmbeddedBroker, _ extra: [(String, String)] = []) -> KafkaProperties {
        var properties = KafkaProperties()
        properties.setGlobal("bootstrap.servers", broker.bootstrapServers, origin: "test")
        properties.setGlobal("log_level", "2", origin: "test")
        for (key, value) in extra { properties.setGlobal(key, value, origin: "test") }
        return properties
    }

    static func generation(
        number: Int = 1,
        _ properties: KafkaProperties,
        topic: String = "pcap",
        counters: Counters,
        reports: ProducerGeneration.ReportServing = .producer,
        stampsCaptureTime: Bool = false
    ) throws -> ProducerGeneration {
        try ProducerGeneration(
            number: number,
            properties: properties,
            topic: topic,
            clientID: "test-\(number)",
            deliveries: counters.pointer,
            partitioner: .hint,
            reports: reports,
            stampsCaptureTime: stampsCaptureTime
        )
    }

    /// `count` messages in one batch: payload i is "message i", its key i µs.
    /// Owns the payloads' memory, as the mbufs own packets on the lcore.
    final class Messages {
        let batch: MessageBatch
        let storage: UnsafeMutableRawPointer
        let count: Int

        init(_ count: Int) {
            self.count = count
            batch = MessageBatch(capacity: count)
            storage = .allocate(byteCount: count * 32, alignment: 8)
            for index in 0..<count {
                let text = Array("message \(index)".utf8)
                let slot = storage + index * 32
                slot.copyMemory(from: text, byteCount: text.count)
                batch.set(
                    index,
                    payload: slot,
                    length: text.count,
                    captureNanos: UInt64(index) * 1000,
                    hint: UInt(index),
                    partition: -1
                )
            }
        }

        deinit {
            batch.deallocate()
            storage.deallocate()
        }

        /// Produces them all through `endpoint`; returns how many librdkafka took.
        func produce(_ endpoint: ProducerEndpoint) -> Int {
            endpoint.produce(batch, from: 0, count: count, placement: .partitioner)
        }
    }

    static func waitUntil(seconds: Double = 10, _ done: () -> Bool, poll: () -> Void = {}) {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() && Date() < deadline {
            poll()
            usleep(5_000)
        }
    }

    /// Reads back every message of `topic`, keyed.
    static func readBack(_ broker: EmbeddedBroker, topic: String = "pcap") throws -> [(key: UInt64, value: String)] {
        try readMessages(broker, topic: topic).map { ($0.key, String(decoding: $0.message.value, as: UTF8.self)) }
    }

    /// Every message of `topic` (for up to 10 s), with its key as a number (.max: none).
    static func readMessages(
        _ broker: EmbeddedBroker,
        topic: String = "pcap"
    ) throws -> [(key: UInt64, message: KafkaTopicReader.Message)] {
        let reader = try KafkaTopicReader(properties: properties(broker), topic: topic, start: .beginning)
        var messages: [(UInt64, KafkaTopicReader.Message)] = []
        let deadline = Date().addingTimeInterval(10)
        while !reader.reachedEnd && Date() < deadline {
            guard let message = try reader.next(timeoutMs: 100) else { continue }
            messages.append((message.key.flatMap(MessageContract.micros(key:)) ?? .max, message))
        }
        return messages
    }

    @Test func aBatchIsDeliveredCountedAndKeyedByCaptureTime() throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 2)])
        let counters = Counters()
        let generation = try Self.generation(Self.properties(broker), counters: counters)
        let endpoint = generation.endpoint
        #expect(Messages(64).produce(endpoint) == 64)
        Self.waitUntil({ counters.delivered == 64 }, poll: { endpoint.serveDeliveryReports() })
        #expect(counters.delivered == 64)
        #expect(counters.failed == 0)
        #expect(counters.latencyCount == 64, "every delivery's latency is measured")
        #expect(generation.partitionCount == 2, "the partitioner tells the worker how many partitions there are")
        let messages = try Self.readBack(broker)
        #expect(messages.count == 64)
        #expect(Set(messages.map(\.key)) == Set(0..<64))
        #expect(messages.allSatisfy { $0.value == "message \($0.key)" }, "each key is its message's capture time")
    }

    /// A message with headers goes to the partition the worker names (or, with
    /// -1, to the one the partitioner gives its hint) and carries the timestamp
    /// it was given (or, with 0, librdkafka's clock), with its headers: the
    /// fixed one, then `time_ns` with this message's capture time.
    @Test func headeredMessagesTakeTheirNamedPartitionAndTimestamp() throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 3)])
        let counters = Counters()
        let generation = try Self.generation(Self.properties(broker), counters: counters)
        let endpoint = generation.endpoint
        let arguments = ProducevaArguments(headers: [("port", "2")], timeNanos: true)
        let key = UnsafeMutablePointer<MessageContract.Key>.allocate(capacity: 1)
        defer { key.deallocate() }
        let stamp: Int64 = 1_700_000_000_123
        let captured: UInt64 = 1_700_000_000_000_000_789
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        for index in 0..<30 {
            key.pointee = MessageContract.key(micros: UInt64(index))
            let text = Array("message \(index)".utf8)
            // Even ones name partition (index / 2) % 3 and a timestamp; odd ones leave
            // both to librdkafka, the partitioner placing them by the hint index.
            let named = index % 2 == 0
            let refusal = text.withUnsafeBytes { bytes in
                endpoint.produce(
                    bytes.baseAddress!,
                    length: bytes.count,
                    originalLength: bytes.count,
                    key: key,
                    hint: UInt(index),
                    partition: named ? Int32(index / 2 % 3) : -1,
                    timestampMillis: named ? stamp + Int64(index) : 0,
                    captureNanos: captured + UInt64(index) * 1_000,
                    arguments: arguments
                )
            }
            #expect(refusal == nil)
        }
        Self.waitUntil({ counters.delivered == 30 }, poll: { endpoint.serveDeliveryReports() })
        let after = Int64(Date().timeIntervalSince1970 * 1000)

        let messages = try Self.readMessages(broker)
        #expect(messages.count == 30)
        for (key, message) in messages {
            let index = Int(key)
            #expect(message.header("port") == "2")
            #expect(message.headers.map(\.name) == ["port", "time_ns"])
            #expect(
                message.headers.last.flatMap { MessageContract.nanos(timeHeader: $0.value) }
                    == captured + UInt64(index) * 1_000
            )
            if index % 2 == 0 {
                #expect(message.partition == Int32(index / 2 % 3), "message \(index)")
                #expect(message.timestampMillis == stamp + Int64(index), "message \(index)")
            } else {
                #expect(message.partition == Int32(index % 3), "message \(index)")
                #expect((before...after).contains(message.timestampMillis), "message \(index)")
            }
        }
    }

    @Test func refusalsAreClassified() throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let counters = Counters()
        let generation = try Self.generation(
            Self.properties(broker, [("message.max.bytes", "1000"), ("queue.buffering.max.messages", "10")]),
            counters: counters
        )
        let endpoint = generation.endpoint
        let key = UnsafeMutablePointer<MessageContract.Key>.allocate(capacity: 1)
        defer { key.deallocate() }
        key.initialize(to: 0)
        let large = [UInt8](repeating: 1, count: 2000)
        let refusal = large.withUnsafeBytes { endpoint.produce($0.baseAddress!, length: $0.count, key: key, hint: 0) }
        #expect(refusal == .tooLarge)
        let small = [UInt8](repeating: 2, count: 10)
        var refusals: [ProduceRefusal?] = []
        for _ in 0..<11 {
            refusals.append(
                small.withUnsafeBytes { endpoint.produce($0.baseAddress!, length: $0.count, key: key, hint: 0) }
            )
        }
        #expect(refusals.prefix(10).allSatisfy { $0 == nil })
        #expect(refusals.last == .queueFull)
        #expect(generation.flushForShutdown(timeoutMs: 5000))
        #expect(counters.delivered == 10)
    }

    @Test func deliveryReportsServedByTheGenerationsOwnThread() throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let counters = Counters()
        let generation = try Self.generation(Self.properties(broker), counters: counters, reports: .thread)
        generation.resumeDeliveryReports()
        #expect(Messages(16).produce(generation.endpoint) == 16)
        // Nobody polls here: the generation's thread serves the reports.
        Self.waitUntil { counters.delivered == 16 }
        #expect(counters.delivered == 16)
        generation.stopDeliveryReports()
    }

    /// A fatal error: what the dead producer still holds (its queue, its
    /// in-flight messages, the messages failed into its rescue buffer) goes to
    /// the successor; nothing is lost and nothing counts as failed.
    @Test func aFatallyFailedGenerationRetiresIntoItsSuccessorLosingNothing() throws {
        let (broker, retirement, counters, retired) = try Self.retiredAfterAFatalError { first in
            #expect(Messages(500).produce(first.endpoint) == 500)
        }
        #expect(counters.failed + retired.failed == 0)
        #expect(counters.delivered + retired.delivered == 500, "delivered by one generation or the other")
        let keys = Set(try Self.readBack(broker).map(\.key))
        #expect(keys == Set(0..<500), "every message is in the topic")
        print(
            "retirement: \(retirement.reproduced) re-produced into the successor, \(counters.delivered) delivered in all"
        )
    }

    /// A generation given messages by `produce`, failed fatally, retired into a
    /// successor that then flushes: what a restart does.
    static func retiredAfterAFatalError(
        stampsCaptureTime: Bool = false,
        _ produce: (ProducerGeneration) -> Void
    ) throws -> (EmbeddedBroker, ProducerGeneration.Retirement, Counters, Counters) {
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let properties = Self.properties(broker, [("enable.idempotence", "true"), ("linger.ms", "50")])
        let counters = Counters()
        let retired = Counters()
        let first = try Self.generation(number: 1, properties, counters: counters, stampsCaptureTime: stampsCaptureTime)
        produce(first)
        first.injectFatalError(reason: "test")
        Self.waitUntil({ first.isFatal }, poll: { first.endpoint.serveDeliveryReports() })
        #expect(first.isFatal)
        #expect(first.fatalError != nil)

        let second = try Self.generation(
            number: 2,
            properties,
            counters: counters,
            stampsCaptureTime: stampsCaptureTime
        )
        let limit = ProducerGeneration.monotonicMillis() + 10_000
        let retirement = first.retire(to: second, countingInto: retired.pointer) { limit }
        #expect(retirement.lost == 0)
        #expect(!retirement.cutShort)
        #expect(second.flushForShutdown(timeoutMs: 10_000))
        return (broker, retirement, counters, retired)
    }

    /// The message contract survives a restart: messages produced with headers
    /// (`port`, `probe`, and `orig_len` on the cut ones) and their own record
    /// timestamps (`--record-time capture`) that a fatally failed producer still
    /// held are produced again to its successor with the same headers and timestamps.
    @Test func headersAndRecordTimesSurviveARetirementIntoTheSuccessor() throws {
        let arguments = ProducevaArguments(headers: [("port", "3"), ("probe", "tap-1")])
        // Capture times an hour ago, a millisecond apart: not what any clock would stamp now.
        let captured = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
        let key = UnsafeMutablePointer<MessageContract.Key>.allocate(capacity: 1)
        defer { key.deallocate() }
        let (broker, retirement, counters, retired) = try Self.retiredAfterAFatalError(stampsCaptureTime: true) {
            first in
            for index in 0..<200 {
                key.pointee = MessageContract.key(micros: UInt64(captured + Int64(index)) * 1000 + 999)
                let text = Array("message \(index)".utf8)
                let refusal = text.withUnsafeBytes { bytes in
                    first.endpoint.produce(
                        bytes.baseAddress!,
                        length: bytes.count,
                        originalLength: index % 2 == 0 ? 1000 + index : bytes.count,
                        key: key,
                        hint: 0,
                        partition: -1,
                        timestampMillis: captured + Int64(index),
                        arguments: arguments
                    )
                }
                #expect(refusal == nil)
            }
        }
        #expect(counters.delivered + retired.delivered == 200)
        #expect(retirement.reproduced > 0, "some messages went through the rescue buffer")

        let reader = try KafkaTopicReader(properties: Self.properties(broker), topic: "pcap", start: .beginning)
        var seen = 0
        let deadline = Date().addingTimeInterval(10)
        while !reader.reachedEnd && Date() < deadline {
            guard let message = try reader.next(timeoutMs: 100) else { continue }
            let index = Int(MessageContract.micros(key: message.key!)! / 1000) - Int(captured)
            #expect(message.header("port") == "3")
            #expect(message.header("probe") == "tap-1")
            #expect(message.header("orig_len") == (index % 2 == 0 ? "\(1000 + index)" : nil), "message \(index)")
            #expect(message.timestampMillis == captured + Int64(index), "message \(index)'s record time")
            seen += 1
        }
        #expect(seen == 200)
        print("headers through a retirement: \(retirement.reproduced) re-produced with their headers and record times")
    }

    /// A producer holding `holding` messages and a successor whose queue is full,
    /// both with an unreachable broker: nothing is delivered, nothing makes room.
    static func retiringIntoAFullSuccessor(
        holding: Int
    ) throws -> (ProducerGeneration, ProducerGeneration, Counters, Counters) {
        var properties = KafkaProperties()
        properties.setGlobal("bootstrap.servers", "127.0.0.1:1", origin: "test")
        properties.setGlobal("log_level", "0", origin: "test")
        var small = properties
        small.setGlobal("queue.buffering.max.messages", "10", origin: "test")
        let counters = Counters()
        let first = try Self.generation(number: 1, properties, counters: counters)
        #expect(Messages(holding).produce(first.endpoint) == holding)
        let second = try Self.generation(number: 2, small, counters: counters)
        #expect(Messages(10).produce(second.endpoint) == 10, "the successor's queue is full")
        return (first, second, counters, Counters())
    }

    /// A retiring producer full of messages whose successor has no room (its broker is unreachable, its queue
    /// full) ends its retirement by the deadline, plus the purge's grace, with every message counted: the
    /// delivery callback only keeps what failed, and the retirement loop waits for room in 1 ms steps checked
    /// against the deadline. Re-producing inside the callback would wait up to 1000 × 1 ms per message, all in
    /// one poll: 200 messages would hold a retirement (and a stop) for 200 s whatever its deadline.
    @Test func aRetirementIntoAFullSuccessorEndsByItsDeadline() throws {
        let (first, second, counters, retired) = try Self.retiringIntoAFullSuccessor(holding: 200)
        let started = ProducerGeneration.monotonicMillis()
        let deadline = started + 1000
        let retirement = first.retire(to: second, countingInto: retired.pointer) { deadline }
        let took = ProducerGeneration.monotonicMillis() - started
        #expect(took < 1000 + ProducerGeneration.purgeGraceMs + 1000, "took \(took) ms")
        #expect(retirement.cutShort)
        #expect(retirement.reproduced + retirement.lost == 200, "every message counted: \(retirement)")
        #expect(retired.failed == retirement.lost)
        #expect(first.outstanding == 0)
        #expect(!second.flushForShutdown(timeoutMs: 100))
        #expect(counters.failed == 10 + retirement.reproduced)
    }

    /// A stop brings a retirement's deadline forward: it ends at the stop's
    /// deadline, not the retirement's own 30 s.
    @Test func aStopCutsARetirementShort() throws {
        let (first, second, _, retired) = try Self.retiringIntoAFullSuccessor(holding: 100)
        let started = ProducerGeneration.monotonicMillis()
        let own = started + 30_000
        let stop = started + 300
        let retirement = first.retire(to: second, countingInto: retired.pointer) {
            ProducerGeneration.monotonicMillis() >= started + 100 ? min(own, stop) : own
        }
        let took = ProducerGeneration.monotonicMillis() - started
        #expect(took < 300 + ProducerGeneration.purgeGraceMs + 1000, "took \(took) ms")
        #expect(retirement.cutShort)
        #expect(retirement.reproduced + retirement.lost == 100)
        _ = second.flushForShutdown(timeoutMs: 100)
    }

    /// With `-X debug=...` librdkafka logs from the thread that produces and polls (a transmit lcore, whose
    /// hot loop must not log): every line goes through the producer's log queue and is logged on the log
    /// thread, never by the application's logger inside the log callback.
    @Test func librdkafkasLogLinesAreNeverLoggedOnTheProducingThread() throws {
        let lines = Mutex<[(thread: UInt, facility: String)]>([])
        KafkaLog.route { _, facility, _, _ in
            let thread = UInt(pthread_self())
            lines.withLock { $0.append((thread, facility)) }
        }
        defer { KafkaLog.route(to: nil) }
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let counters = Counters()
        let done = DispatchSemaphore(value: 0)
        let producing = Mutex<UInt>(0)
        // Created, produced to and polled on the "lcore"; released here, as the owner thread would.
        let kept = Mutex<ProducerGeneration?>(nil)
        let thread = Thread {
            defer { done.signal() }
            producing.withLock { $0 = UInt(pthread_self()) }
            guard
                let generation = try? Self.generation(
                    Self.properties(broker, [("debug", "all"), ("log_level", "7")]),
                    counters: counters
                )
            else { return }
            kept.withLock { $0 = generation }
            let endpoint = generation.endpoint
            for _ in 0..<4 {
                _ = Messages(16).produce(endpoint)
                endpoint.serveDeliveryReports()
            }
            Self.waitUntil({ counters.delivered == 64 }, poll: { endpoint.serveDeliveryReports() })
            generation.injectFatalError(reason: "test")  // librdkafka logs the fatal error on this thread
            endpoint.serveDeliveryReports()
        }
        thread.start()
        done.wait()
        #expect(counters.delivered == 64)
        Self.waitUntil(seconds: 2) { lines.withLock { $0.count } > 0 }
        usleep(100_000)
        kept.withLock { $0 = nil }
        let seen = lines.withLock { $0 }
        let lcore = producing.withLock { $0 }
        let onLcore = seen.filter { $0.thread == lcore }
        #expect(!seen.isEmpty, "debug lines were logged")
        #expect(
            onLcore.isEmpty,
            "\(onLcore.count) of \(seen.count) lines on the producing thread: \(Set(onLcore.map(\.facility)))"
        )
    }

    /// A stop with no broker: the flush gives up at its timeout and every
    /// message is purged and counted as a failed delivery.
    @Test func aShutdownWithoutABrokerFailsWhatIsLeftWithinItsTimeout() throws {
        var properties = KafkaProperties()
        properties.setGlobal("bootstrap.servers", "127.0.0.1:1", origin: "test")
        properties.setGlobal("log_level", "0", origin: "test")
        let counters = Counters()
        let generation = try Self.generation(properties, counters: counters)
        #expect(Messages(100).produce(generation.endpoint) == 100)
        let started = Date()
        #expect(!generation.flushForShutdown(timeoutMs: 500))
        #expect(Date().timeIntervalSince(started) < 6)
        #expect(counters.failed == 100)
        #expect(generation.outstanding == 0)
    }

    @Test func librdkafkasStatisticsArePostedForTheControlPlane() throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let counters = Counters()
        let generation = try Self.generation(
            Self.properties(broker, [("statistics.interval.ms", "100")]),
            counters: counters
        )
        var json: String?
        Self.waitUntil(
            { json != nil },
            poll: {
                generation.endpoint.serveDeliveryReports()
                json = generation.takeStatistics()
            }
        )
        let statistics = try #require(json)
        let object = try JSONSerialization.jsonObject(with: Data(statistics.utf8)) as? [String: Any]
        #expect(object?["client_id"] as? String == "test-1")
        #expect(generation.takeStatistics() == nil, "taken once")
    }
}

extension ProducerGenerationTests {
    /// `consume` reads from offsets the seek found; retention may delete them
    /// before the fetch. An offset the partition no longer holds (here, one past
    /// its end, which the broker refuses alike) must fail the read with the
    /// partition named, not reset: librdkafka's default reset would jump to the
    /// end, and the read would end at once, "complete", with nothing of the window.
    @Test func anOffsetThePartitionNoLongerHoldsFailsTheReadLoudly() throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let counters = Counters()
        let generation = try Self.generation(Self.properties(broker), counters: counters)
        let endpoint = generation.endpoint
        #expect(Messages(8).produce(endpoint) == 8)
        Self.waitUntil({ counters.delivered == 8 }, poll: { endpoint.serveDeliveryReports() })
        let reader = try KafkaTopicReader(
            properties: Self.properties(broker),
            topic: "pcap",
            start: .beginning,
            offsets: [0: 1_000]
        )
        var failure: KafkaError?
        let deadline = Date().addingTimeInterval(10)
        while failure == nil && !reader.reachedEnd && Date() < deadline {
            do { _ = try reader.next(timeoutMs: 100) } catch let error as KafkaError { failure = error }
        }
        #expect(!reader.reachedEnd, "the read must not end as if complete")
        #expect(
            failure?.message.contains("partition 0 no longer holds the offset this read needs (1000") == true,
            "\(String(describing: failure))"
        )
    }
}
