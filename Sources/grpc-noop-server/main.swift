// A gRPC server with one no-op unary method, `/bench.Noop/Call`, that answers every request
// with an empty message: to measure the GRPCServer layer alone, e.g. with h2load.
//
//     grpc-noop-server [port] [threads]

import GRPCServer
import GRPCStatus
import NIOCore
import NIOPosix

/// Answers one empty message and OK once the request is complete.
final class NoopHandler: ServerCallHandler {
    let call: ServerCall

    init(call: ServerCall) {
        self.call = call
    }

    func received(_ message: [UInt8]) {}

    func receivedEnd() {
        call.send([], flush: false)
        call.finish(.ok)
    }

    func cancelled() {}
}

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 50_051 : 50_051
let threads = arguments.count > 2 ? Int(arguments[2]) ?? System.coreCount : System.coreCount
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let server = GRPCServer(
    configuration: GRPCServerConfiguration(host: "127.0.0.1", port: port),
    group: group,
    router: { call in
        call.service == "bench.Noop" && call.method == "Call" ? NoopHandler(call: call) : nil
    },
    http: nil)
let boundPort = try await server.start()
print("grpc-noop-server listening on 127.0.0.1:\(boundPort) with \(threads) threads")
while true {
    try await Task.sleep(for: .seconds(3_600))
}
