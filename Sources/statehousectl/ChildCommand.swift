import Foundation

/// A command `lock` runs while it holds the lock.
enum ChildCommand {
    /// Runs `arguments` (the first is looked up on PATH) with this process's environment plus
    /// `environment`, passing SIGINT and SIGTERM on to it, and returns its exit status (128+N
    /// when signal N killed it).
    ///
    /// - Throws: `CommandFailure` if the command cannot be started.
    static func run(_ arguments: [String], environment: [String: String]) async throws -> Int32 {
        guard !arguments.isEmpty else { return 0 }
        let signals = TerminationSignals.shared.stream()
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let pid = try spawn(arguments, environment: variables.map { "\($0.key)=\($0.value)" })
        return await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await number in signals { kill(pid, number) }
                return nil
            }
            let status = await exitStatus(of: pid)
            group.cancelAll()
            return status
        }
    }

    /// Starts `arguments` with a clean signal state: nothing blocked, and SIGINT, SIGTERM,
    /// SIGQUIT and SIGPIPE at their defaults. (The threads of this process block or ignore
    /// them, and a child would inherit that: it could then not be interrupted.)
    private static func spawn(_ arguments: [String], environment: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGQUIT, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], nil, &attributes, argv, envp)
        guard result == 0 else {
            let reason = result == ENOENT ? "command not found" : String(cString: strerror(result))
            throw CommandFailure("\(arguments[0]): \(reason)")
        }
        return pid
    }

    /// Waits (on a thread of its own) until `pid` exits; its exit status, or 128+N if signal
    /// N killed it.
    private static func exitStatus(of pid: pid_t) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1, errno == EINTR {}
                let signal = status & 0x7F
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xFF : 128 + signal)
            }
        }
    }
}
