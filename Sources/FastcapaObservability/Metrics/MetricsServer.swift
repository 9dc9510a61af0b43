import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP server for scrapers and health checks: `GET /metrics`
/// (Prometheus text format) and `GET /health` (200 healthy or degraded, 503
/// unhealthy, with the reason). It runs on its own event-loop thread and answers
/// on it: each response is rendered there, synchronously, from the monitor's
/// snapshot, so when `stop` returns (the loop has shut down) no request is in
/// flight, and none ever touched the pipeline.
package final class MetricsServer: Sendable {
    package typealias Render = @Sendable () -> String
    package typealias Health = @Sendable () -> HealthSummary

    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    /// Where it listens (with the real port when 0 was asked for).
    package let address: String

    package init(host: String, port: Int, metrics: @escaping Render, health: @escaping Health) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(metrics: metrics, health: health))
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        address = "\(host):\(channel.localAddress?.port ?? port)"
    }

    /// Stops listening, closes the connections and shuts the event loop down,
    /// waiting for the response being rendered, if any.
    package func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let metrics: Render
        let health: Health
        private var path: String?
        private var method: HTTPMethod = .GET

        init(metrics: @escaping Render, health: @escaping Health) {
            self.metrics = metrics
            self.health = health
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                path = String(head.uri.split(separator: "?").first ?? "")
                method = head.method
            case .body:
                break
            case .end:
                let (status, type, body) = answer(method: method, path: path)
                respond(context, status: status, type: type, body: body, head: method == .HEAD)
            }
        }

        private func answer(method: HTTPMethod, path: String?) -> (HTTPResponseStatus, String, String) {
            guard method == .GET || method == .HEAD else { return (.methodNotAllowed, "text/plain", "use GET\n") }
            switch path {
            case "/metrics":
                return (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics())
            case "/health":
                let summary = health()
                let status: HTTPResponseStatus = if case .unhealthy = summary.state { .serviceUnavailable } else { .ok }
                return (status, "text/plain", "\(summary.state)\n")
            default:
                return (.notFound, "text/plain", "not found: try /metrics or /health\n")
            }
        }

        private func respond(
            _ context: ChannelHandlerContext,
            status: HTTPResponseStatus,
            type: String,
            body: String,
            head: Bool
        ) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil
            )
            if !head {
                var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
                buffer.writeString(body)
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            // Connection: close, so the channel closes once the response is written.
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
