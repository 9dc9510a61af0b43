import Foundation

/// What the control plane reads in librdkafka's statistics JSON.
package enum LibrdkafkaStatistics {
    /// The largest average round trip (ms) among brokers that are up, if any.
    package static func slowestRoundTripMs(_ json: String) -> Double? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let brokers = object["brokers"] as? [String: Any]
        else { return nil }
        let roundTrips = brokers.values.compactMap { value -> Double? in
            guard let broker = value as? [String: Any], broker["state"] as? String == "UP",
                let rtt = broker["rtt"] as? [String: Any], let average = rtt["avg"] as? Double, average > 0
            else { return nil }
            return average / 1000  // µs
        }
        return roundTrips.max()
    }
}
