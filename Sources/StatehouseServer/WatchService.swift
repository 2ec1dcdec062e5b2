import EtcdWire
import GRPCServer
import GRPCStatus
import NIOCore

/// `etcdserverpb.Watch`.
struct WatchService: EtcdService {
    let host: MemberHost

    func watch(_ call: ServerCall) -> any ServerCallHandler {
        let host = self.host
        let stream = WatchStream(call: call, requiresLeader: call.requiresLeader)
        if stream.requiresLeader && !host.hasLeaderHint {
            call.fail(.noLeader)
        }
        host.loop.execute { host.watches.open(stream) }
        call.onWritabilityChanged { writable in
            host.loop.execute { host.watches.setWritable(writable, stream: stream) }
        }
        return StreamingCall<Etcdserverpb_WatchRequest>(
            call: call,
            onMessage: { request in host.loop.execute { host.watches.handle(request, on: stream) } },
            // As in etcd, a client that half-closes keeps its watches: the stream ends when the
            // client cancels it (the JSON gateway half-closes once the request body has been read).
            onEnd: {},
            onCancel: { host.loop.execute { host.watches.close(stream) } })
    }
}
