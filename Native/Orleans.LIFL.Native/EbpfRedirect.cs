namespace Orleans.LIFL.Dataplane;

/// <summary>
/// The node's eBPF socket redirection (sock_ops + sk_msg on a sockhash): messages between sockets of this node
/// whose port is registered go straight to the peer socket instead of through the TCP/IP stack. The programs are
/// pinned under a directory of the BPF filesystem and shared by the node's processes.
/// </summary>
public sealed unsafe class EbpfRedirect : IDisposable
{
    private nint _handle;

    private EbpfRedirect(nint handle, string pinDirectory)
    {
        _handle = handle;
        PinDirectory = pinDirectory;
    }

    public string PinDirectory { get; }

    /// <summary>Loads (or joins) the redirection; false with the reason when this machine or build cannot.</summary>
    public static bool TryOpen(string pinDirectory, string? cgroupPath, out EbpfRedirect? redirect, out string error)
    {
        ArgumentException.ThrowIfNullOrEmpty(pinDirectory);
        redirect = null;
        cgroupPath ??= FindCgroup2Mount();
        if (cgroupPath is null)
        {
            error = "no cgroup v2 hierarchy is mounted (see /proc/mounts)";
            return false;
        }

        var message = stackalloc byte[512];
        message[0] = 0;
        int status;
        nint handle;
        try
        {
            status = NativeMethods.EbpfOpen(pinDirectory, cgroupPath, out handle, message, 512);
        }
        catch (DllNotFoundException missing)
        {
            error = $"libliflnative is not available: {missing.Message}";
            return false;
        }

        if (status != NativeStatus.Ok)
        {
            var text = System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)message);
            error = string.IsNullOrEmpty(text) ? NativeMethods.Describe(status) : text;
            return false;
        }

        redirect = new EbpfRedirect(handle, pinDirectory);
        error = "";
        return true;
    }

    /// <summary>Redirects messages of sockets whose local or remote port is <paramref name="port"/> (from their next connection).</summary>
    public void AddPort(int port)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        Check(NativeMethods.EbpfAddPort(Handle, (ushort)port), $"Registering port {port} for eBPF redirection");
    }

    public void RemovePort(int port) =>
        Check(NativeMethods.EbpfRemovePort(Handle, (ushort)port), $"Unregistering port {port} from eBPF redirection");

    /// <summary>The in-kernel counters, and the kernel's own run counts of the two programs.</summary>
    public EbpfStatistics GetStatistics()
    {
        NativeEbpfStats stats;
        Check(NativeMethods.EbpfGetStats(Handle, &stats), "Reading the eBPF statistics");
        return new EbpfStatistics((long)stats.SocketsAdded, (long)stats.MessagesRedirected, (long)stats.MessagesPassed,
            (long)stats.MsgProgramRunCount, (long)stats.SockOpsProgramRunCount);
    }

    /// <summary>Closes this process's handles; the pinned programs stay in effect for the node.</summary>
    public void Dispose()
    {
        var handle = Interlocked.Exchange(ref _handle, 0);
        if (handle != 0)
        {
            NativeMethods.EbpfClose(handle);
        }
    }

    /// <summary>Detaches and unpins the redirection under <paramref name="pinDirectory"/>: new messages take the TCP/IP path.</summary>
    public static void Unpin(string pinDirectory, string? cgroupPath = null)
    {
        cgroupPath ??= FindCgroup2Mount() ?? throw new DataplaneException("No cgroup v2 hierarchy is mounted.");
        Check(NativeMethods.EbpfUnpin(pinDirectory, cgroupPath), $"Unpinning the eBPF redirection under {pinDirectory}");
    }

    /// <summary>Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems).</summary>
    public static string? FindCgroup2Mount()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/mounts"))
            {
                var fields = line.Split(' ');
                if (fields.Length > 2 && fields[2] == "cgroup2")
                {
                    return fields[1];
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    private nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(EbpfRedirect));

    private static void Check(int status, string what)
    {
        if (status != NativeStatus.Ok)
        {
            throw SharedBufferPool.Failure(what, status);
        }
    }
}

/// <param name="SocketsAdded">Sockets the sock_ops program put into the sockhash.</param>
/// <param name="MessagesRedirected">Messages the sk_msg program sent straight to the peer socket.</param>
/// <param name="MessagesPassed">Messages of tracked sockets without a local peer (they took the TCP/IP path).</param>
/// <param name="MessageProgramRuns">The kernel's run count of the sk_msg program.</param>
/// <param name="SockOpsProgramRuns">The kernel's run count of the sock_ops program.</param>
public sealed record EbpfStatistics(long SocketsAdded, long MessagesRedirected, long MessagesPassed, long MessageProgramRuns, long SockOpsProgramRuns);
