import FastcapaKafka
import Testing

@Suite struct LibrdkafkaStatisticsTests {
    @Test func statisticsRoundTripIsTheSlowestBrokerThatIsUp() {
        let json = """
            {"name":"p","brokers":{"a":{"state":"UP","rtt":{"avg":500000}},"b":{"state":"UP","rtt":{"avg":20000}},
             "c":{"state":"DOWN","rtt":{"avg":9000000}}}}
            """
        #expect(LibrdkafkaStatistics.slowestRoundTripMs(json) == 500)
        #expect(LibrdkafkaStatistics.slowestRoundTripMs("{}") == nil)
        #expect(LibrdkafkaStatistics.slowestRoundTripMs("not json") == nil)
    }
}
