using System.Numerics;
using System.Text.RegularExpressions;

namespace Orleans.LIFL.Dataplane;

/// <summary>
/// This process's view of its node's shared-memory pool: several processes (silos, co-located clients) open the
/// same named pool and hand each other buffers by descriptor, the bytes never moving. Buffers are reference
/// counted per process; the references of a process that died are reclaimed by <see cref="Recover"/>.
/// </summary>
public sealed unsafe partial class SharedBufferPool : IDisposable
{
    /// <summary>The default data area: address space only; memory is used as buffers are written.</summary>
    public const long DefaultCapacity = 8L << 30;

    public const long MaxBufferLength = 1L << 30;

    /// <summary>The smallest block the pool's buddy allocator hands out (LIFL_MIN_BUFFER_BYTES).</summary>
    public const long MinBufferLength = 4096;

    /// <summary>The pool memory a buffer of <paramref name="length"/> bytes takes: its buddy block, a power of two of at least <see cref="MinBufferLength"/>.</summary>
    public static long BlockLength(long length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxBufferLength);
        return (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(length, MinBufferLength));
    }

    private static readonly Dictionary<string, SharedBufferPool> Acquired = new(StringComparer.Ordinal);
    private readonly PoolSafeHandle _handle;
    private int _leases; // under Acquired's lock; 0 for an instance of Open
    private long _liveHandles;
    private long _leakedHandles;
    private long _bytesCopied;
    private long _bytesHandedOff;
    private long _handOffs;

    private SharedBufferPool(string name, PoolSafeHandle handle)
    {
        Name = name;
        _handle = handle;
        Data = NativeMethods.PoolData(handle);
        Capacity = (long)NativeMethods.PoolCapacity(handle);
        Slot = (int)NativeMethods.PoolSlot(handle);
    }

    /// <summary>The pool's name on this node (the shared-memory segment is /dev/shm/lifl.NAME).</summary>
    public string Name { get; }

    /// <summary>This process's slot: what other processes give references to.</summary>
    public int Slot { get; }

    public long Capacity { get; }

    internal byte* Data { get; }

    internal PoolSafeHandle Handle => _handle;

    /// <summary>Opens the pool <paramref name="name"/>, creating it with <paramref name="capacity"/> bytes if absent.</summary>
    public static SharedBufferPool Open(string name, long capacity = DefaultCapacity)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!ValidName().IsMatch(name))
        {
            throw new ArgumentException($"Pool name '{name}' must be 1 to 100 letters, digits, '.', '-' or '_'.", nameof(name));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1L << 20);
        var status = NativeMethods.PoolOpen(name, (ulong)capacity, out var handle);
        if (status != NativeStatus.Ok)
        {
            handle.Dispose();
            throw Failure($"Opening shared pool '{name}'", status);
        }

        return new SharedBufferPool(name, handle);
    }

    /// <summary>Whether this node has a pool named <paramref name="name"/> (its segment, /dev/shm/lifl.NAME, exists).</summary>
    public static bool Exists(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return File.Exists($"/dev/shm/lifl.{name}");
    }

    /// <summary>
    /// Removes the pool <paramref name="name"/> if no live process maps it, reclaiming the references of dead ones
    /// first; true when it did. The last process to dispose a pool removes it by itself: this is for pools whose
    /// processes were all killed. A pool that does not exist is left alone (false).
    /// </summary>
    public static bool RemoveIfUnused(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var status = NativeMethods.PoolRemoveIfUnused(name, out var removed);
        return status == NativeStatus.Ok ? removed != 0 : throw Failure($"Removing shared pool '{name}'", status);
    }

    /// <summary>
    /// This process's shared attachment to the pool <paramref name="name"/>: every silo and client of the process that
    /// acquires the same pool gets the same instance (one slot, as the pool counts processes), so one of them stopping
    /// never unmaps memory another still reads. Dispose it once per acquisition; the last one closes it.
    /// </summary>
    public static SharedBufferPool Acquire(string name, long capacity = DefaultCapacity)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (Acquired)
        {
            if (Acquired.TryGetValue(name, out var shared) && !shared.IsClosed)
            {
                shared._leases++;
                return shared;
            }

            var pool = Open(name, capacity);
            pool._leases = 1;
            Acquired[name] = pool;
            return pool;
        }
    }

    /// <summary>Another lease on an instance of <see cref="Acquire"/>, for another owner that disposes it (a DI container).</summary>
    internal SharedBufferPool AddLease()
    {
        lock (Acquired)
        {
            ObjectDisposedException.ThrowIf(_leases == 0 || IsClosed, this);
            _leases++;
            return this;
        }
    }

    /// <summary>Removes the pool's name: processes that have it open keep using it; the next open creates a new one.</summary>
    public static void Unlink(string name)
    {
        var status = NativeMethods.PoolUnlink(name);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Removing shared pool '{name}'", status);
        }
    }

    /// <summary>A new buffer of <paramref name="length"/> bytes (contents undefined) that this process holds.</summary>
    public SharedBuffer Rent(long length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxBufferLength);
        BufferDescriptor descriptor;
        var status = NativeMethods.BufferAlloc(_handle, (ulong)length, &descriptor);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Allocating {length:N0} bytes from shared pool '{Name}'", status);
        }

        return new SharedBuffer(this, descriptor);
    }

    /// <summary>
    /// Wraps a reference another process gave this one (<see cref="Give"/>): the handle takes it over and drops it
    /// when disposed. Checks that the descriptor still names a live buffer inside this pool.
    /// </summary>
    public SharedBuffer Adopt(in BufferDescriptor descriptor)
    {
        var copy = descriptor;
        uint total;
        var status = NativeMethods.BufferRefCount(_handle, &copy, &total);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Adopting {descriptor}", status);
        }

        return new SharedBuffer(this, descriptor);
    }

    /// <summary>Takes a reference for the process in <paramref name="slot"/>; this process must hold one itself.</summary>
    public void Give(in BufferDescriptor descriptor, int slot)
    {
        var copy = descriptor;
        var status = NativeMethods.BufferGive(_handle, &copy, (uint)slot);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Giving {descriptor} to slot {slot}", status);
        }

        Interlocked.Add(ref _bytesHandedOff, (long)descriptor.Length);
        Interlocked.Increment(ref _handOffs);
    }

    /// <summary>
    /// Maps the buffer's pages into this process in one call rather than a page fault per 4 KiB page on first touch
    /// (with <paramref name="forWrite"/>, allocating those never written): for a large buffer about to be read or
    /// written in a hurry. This process must hold a reference.
    /// </summary>
    public void Prefault(in BufferDescriptor descriptor, bool forWrite)
    {
        var copy = descriptor;
        var status = NativeMethods.BufferPrefault(_handle, &copy, forWrite ? 1 : 0);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Prefaulting {descriptor}", status);
        }
    }

    /// <summary>How many references all processes together hold on the buffer.</summary>
    public int ReferenceCount(in BufferDescriptor descriptor)
    {
        var copy = descriptor;
        uint total;
        var status = NativeMethods.BufferRefCount(_handle, &copy, &total);
        return status == NativeStatus.Ok ? (int)total : throw Failure($"Counting the references of {descriptor}", status);
    }

    /// <summary>Whether a live process is attached in <paramref name="slot"/>.</summary>
    public bool IsSlotAlive(int slot) => slot is >= 0 and < 64 && NativeMethods.PoolSlotAlive(_handle, (uint)slot) == 1;

    /// <summary>Reclaims the references of processes that died; returns how many buffers that freed.</summary>
    public long Recover()
    {
        ulong recovered;
        var status = NativeMethods.PoolRecover(_handle, &recovered);
        return status == NativeStatus.Ok ? (long)recovered : throw Failure($"Recovering shared pool '{Name}'", status);
    }

    /// <summary>Pushes a descriptor onto the queue of the process in <paramref name="slot"/>; false when it is full.</summary>
    public bool TryPost(int slot, in BufferDescriptor descriptor)
    {
        var copy = descriptor;
        var status = NativeMethods.QueuePush(_handle, (uint)slot, &copy);
        return status switch
        {
            NativeStatus.Ok => true,
            NativeStatus.Full => false,
            _ => throw Failure($"Posting {descriptor} to slot {slot}", status),
        };
    }

    /// <summary>Takes the next descriptor posted to this process, waiting up to <paramref name="timeout"/>.</summary>
    public bool TryTake(out BufferDescriptor descriptor, TimeSpan timeout)
    {
        BufferDescriptor taken;
        var status = timeout == TimeSpan.Zero
            ? NativeMethods.QueuePop(_handle, &taken)
            : NativeMethods.QueueWait(_handle, &taken, timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Ceiling(timeout.TotalMilliseconds));
        descriptor = taken;
        return status switch
        {
            NativeStatus.Ok => true,
            NativeStatus.Empty or NativeStatus.Timeout => false,
            _ => throw Failure("Taking from this process's descriptor queue", status),
        };
    }

    /// <summary>Wakes a thread waiting in <see cref="TryTake"/> (it returns false).</summary>
    public void InterruptTake() => NativeMethods.QueueInterrupt(_handle);

    /// <summary>Records bytes a transport copied because they could not be handed off (another node).</summary>
    public void CountCopied(long bytes) => Interlocked.Add(ref _bytesCopied, bytes);

    public SharedPoolStatistics GetStatistics()
    {
        NativePoolStats stats;
        var status = NativeMethods.PoolGetStats(_handle, &stats);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Reading the statistics of shared pool '{Name}'", status);
        }

        return new SharedPoolStatistics(
            Name, Slot, (long)stats.CapacityBytes, (long)stats.UsedBytes, (long)stats.RequestedBytes, (long)stats.LiveBuffers,
            (long)stats.Allocations, (long)stats.Frees, (long)stats.RecoveredBuffers, (long)stats.RecoveredProcesses,
            (long)stats.LargestFreeBytes, (int)stats.AttachedProcesses,
            Volatile.Read(ref _liveHandles), Volatile.Read(ref _leakedHandles), Volatile.Read(ref _bytesCopied),
            Volatile.Read(ref _bytesHandedOff), Volatile.Read(ref _handOffs))
        {
            ResidentBytes = (long)stats.ResidentBytes,
        };
    }

    /// <summary>
    /// Detaches this attachment: every reference it still holds is dropped. An instance from <see cref="Acquire"/> is
    /// detached when its last acquirer disposes it.
    /// </summary>
    public void Dispose()
    {
        if (_leases > 0)
        {
            lock (Acquired)
            {
                if (--_leases > 0)
                {
                    return;
                }

                Acquired.Remove(Name);
            }
        }

        _handle.Dispose();
    }

    internal bool IsClosed => _handle.IsClosed;

    internal void AddRef(in BufferDescriptor descriptor)
    {
        var copy = descriptor;
        var status = NativeMethods.BufferAddRef(_handle, &copy);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Sharing {descriptor}", status);
        }
    }

    internal void Release(in BufferDescriptor descriptor)
    {
        if (_handle.IsClosed)
        {
            // Closing the pool dropped every reference of this process already.
            return;
        }

        var copy = descriptor;
        var status = NativeMethods.BufferRelease(_handle, &copy);
        if (status != NativeStatus.Ok)
        {
            throw Failure($"Releasing {descriptor}", status);
        }
    }

    internal void OnHandleCreated() => Interlocked.Increment(ref _liveHandles);

    internal void OnHandleReleased() => Interlocked.Decrement(ref _liveHandles);

    internal void OnHandleLeaked(in BufferDescriptor descriptor)
    {
        Interlocked.Increment(ref _leakedHandles);
        Interlocked.Decrement(ref _liveHandles);
        try
        {
            Release(descriptor);
        }
        catch (Exception error) when (error is DataplaneException or ObjectDisposedException)
        {
            // A finalizer must not throw; the leak is counted either way.
        }
    }

    internal static DataplaneException Failure(string what, int status)
    {
        var reason = NativeMethods.Describe(status);
        if (status == NativeStatus.System)
        {
            reason += $" ({System.Runtime.InteropServices.Marshal.GetLastPInvokeErrorMessage()})";
        }

        return new DataplaneException($"{what} failed: {reason}.", status);
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,100}$")]
    private static partial Regex ValidName();
}

/// <summary>What the pool holds (all processes) and what this process did with it.</summary>
/// <param name="LiveHandles">Handles of this process not yet disposed.</param>
/// <param name="LeakedHandles">Handles of this process that were garbage-collected without being disposed.</param>
/// <param name="BytesCopied">Bytes this process's transports copied (streamed to or from another node).</param>
/// <param name="BytesHandedOff">Bytes handed to other processes of this node by descriptor, without a copy.</param>
public sealed record SharedPoolStatistics(
    string Name, int Slot, long CapacityBytes, long UsedBytes, long RequestedBytes, long LiveBuffers, long Allocations,
    long Frees, long RecoveredBuffers, long RecoveredProcesses, long LargestFreeBytes, int AttachedProcesses,
    long LiveHandles, long LeakedHandles, long BytesCopied, long BytesHandedOff, long HandOffs)
{
    /// <summary>
    /// The node memory the pool's segment holds: the pages ever written and not given back (freed blocks keep theirs,
    /// so this is the high-water mark of what was written at once, not of <see cref="UsedBytes"/>).
    /// </summary>
    public long ResidentBytes { get; init; }
}
