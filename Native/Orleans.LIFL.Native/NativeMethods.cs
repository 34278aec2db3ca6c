using System.Runtime.InteropServices;

namespace Orleans.LIFL.Dataplane;

/// <summary>
/// The entry points of libliflnative (Native/include/lifl_native.h). Blittable arguments only on hot paths. Every call
/// returning a status keeps errno (SetLastError: two thread-local accesses) so that a LIFL_E_SYS failure names the
/// system's reason instead of whatever errno the runtime left.
/// </summary>
internal static unsafe partial class NativeMethods
{
    private const string Library = "liflnative";

    [LibraryImport(Library, EntryPoint = "lifl_pool_open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int PoolOpen(string name, ulong capacity, out PoolSafeHandle pool);

    [LibraryImport(Library, EntryPoint = "lifl_pool_close")]
    internal static partial void PoolClose(nint pool);

    [LibraryImport(Library, EntryPoint = "lifl_pool_remove_if_unused", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int PoolRemoveIfUnused(string name, out int removed);

    [LibraryImport(Library, EntryPoint = "lifl_pool_unlink", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int PoolUnlink(string name);

    [LibraryImport(Library, EntryPoint = "lifl_pool_slot")]
    internal static partial uint PoolSlot(PoolSafeHandle pool);

    [LibraryImport(Library, EntryPoint = "lifl_pool_data")]
    internal static partial byte* PoolData(PoolSafeHandle pool);

    [LibraryImport(Library, EntryPoint = "lifl_pool_capacity")]
    internal static partial ulong PoolCapacity(PoolSafeHandle pool);

    [LibraryImport(Library, EntryPoint = "lifl_buf_alloc", SetLastError = true)]
    internal static partial int BufferAlloc(PoolSafeHandle pool, ulong length, BufferDescriptor* descriptor);

    [LibraryImport(Library, EntryPoint = "lifl_buf_addref", SetLastError = true)]
    internal static partial int BufferAddRef(PoolSafeHandle pool, BufferDescriptor* descriptor);

    [LibraryImport(Library, EntryPoint = "lifl_buf_give", SetLastError = true)]
    internal static partial int BufferGive(PoolSafeHandle pool, BufferDescriptor* descriptor, uint slot);

    [LibraryImport(Library, EntryPoint = "lifl_buf_release", SetLastError = true)]
    internal static partial int BufferRelease(PoolSafeHandle pool, BufferDescriptor* descriptor);

    [LibraryImport(Library, EntryPoint = "lifl_buf_prefault", SetLastError = true)]
    internal static partial int BufferPrefault(PoolSafeHandle pool, BufferDescriptor* descriptor, int forWrite);

    [LibraryImport(Library, EntryPoint = "lifl_buf_refcount", SetLastError = true)]
    internal static partial int BufferRefCount(PoolSafeHandle pool, BufferDescriptor* descriptor, uint* total);

    [LibraryImport(Library, EntryPoint = "lifl_pool_recover", SetLastError = true)]
    internal static partial int PoolRecover(PoolSafeHandle pool, ulong* recoveredBuffers);

    [LibraryImport(Library, EntryPoint = "lifl_pool_slot_alive", SetLastError = true)]
    internal static partial int PoolSlotAlive(PoolSafeHandle pool, uint slot);

    [LibraryImport(Library, EntryPoint = "lifl_pool_get_stats", SetLastError = true)]
    internal static partial int PoolGetStats(PoolSafeHandle pool, NativePoolStats* stats);

    [LibraryImport(Library, EntryPoint = "lifl_queue_push", SetLastError = true)]
    internal static partial int QueuePush(PoolSafeHandle pool, uint slot, BufferDescriptor* descriptor);

    [LibraryImport(Library, EntryPoint = "lifl_queue_pop", SetLastError = true)]
    internal static partial int QueuePop(PoolSafeHandle pool, BufferDescriptor* descriptor);

    [LibraryImport(Library, EntryPoint = "lifl_queue_wait", SetLastError = true)]
    internal static partial int QueueWait(PoolSafeHandle pool, BufferDescriptor* descriptor, int timeoutMilliseconds);

    [LibraryImport(Library, EntryPoint = "lifl_queue_interrupt")]
    internal static partial void QueueInterrupt(PoolSafeHandle pool);

    [LibraryImport(Library, EntryPoint = "lifl_ebpf_open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int EbpfOpen(string pinDirectory, string cgroupPath, out nint ebpf, byte* error, nuint errorLength);

    [LibraryImport(Library, EntryPoint = "lifl_ebpf_add_port", SetLastError = true)]
    internal static partial int EbpfAddPort(nint ebpf, ushort port);

    [LibraryImport(Library, EntryPoint = "lifl_ebpf_remove_port", SetLastError = true)]
    internal static partial int EbpfRemovePort(nint ebpf, ushort port);

    [LibraryImport(Library, EntryPoint = "lifl_ebpf_get_stats", SetLastError = true)]
    internal static partial int EbpfGetStats(nint ebpf, NativeEbpfStats* stats);

    [LibraryImport(Library, EntryPoint = "lifl_ebpf_close")]
    internal static partial void EbpfClose(nint ebpf);

    [LibraryImport(Library, EntryPoint = "lifl_ebpf_unpin", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int EbpfUnpin(string pinDirectory, string cgroupPath);

    [LibraryImport(Library, EntryPoint = "lifl_beacon_light", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int BeaconLight(string directory, string name, out nint beacon);

    [LibraryImport(Library, EntryPoint = "lifl_beacon_put_out", SetLastError = true)]
    internal static partial int BeaconPutOut(nint beacon);

    [LibraryImport(Library, EntryPoint = "lifl_beacon_open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int BeaconOpen(string directory, string name, out nint beacon);

    [LibraryImport(Library, EntryPoint = "lifl_beacon_wait", SetLastError = true)]
    internal static partial int BeaconWait(nint beacon, int timeoutMilliseconds);

    [LibraryImport(Library, EntryPoint = "lifl_beacon_close")]
    internal static partial void BeaconClose(nint beacon);

    [LibraryImport(Library, EntryPoint = "lifl_beacon_remove_if_dead", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int BeaconRemoveIfDead(string directory, string name, out int removed);

    [LibraryImport(Library, EntryPoint = "lifl_strerror")]
    internal static partial nint StatusText(int status);

    internal static string Describe(int status) => Marshal.PtrToStringUTF8(StatusText(status)) ?? $"status {status}";
}

/// <summary>lifl_pool_stats, field for field.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativePoolStats
{
    public ulong CapacityBytes;
    public ulong UsedBytes;
    public ulong RequestedBytes;
    public ulong LiveBuffers;
    public ulong Allocations;
    public ulong Frees;
    public ulong RecoveredBuffers;
    public ulong RecoveredProcesses;
    public ulong LargestFreeBytes;
    public uint AttachedProcesses;
    public uint MaxProcesses;
    public ulong ResidentBytes;
}

/// <summary>lifl_ebpf_stats, field for field.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeEbpfStats
{
    public ulong SocketsAdded;
    public ulong MessagesRedirected;
    public ulong MessagesPassed;
    public ulong MsgProgramRunCount;
    public ulong SockOpsProgramRunCount;
}

/// <summary>The status codes of lifl_native.h.</summary>
internal static class NativeStatus
{
    public const int Ok = 0;
    public const int NoMemory = -1;
    public const int Invalid = -2;
    public const int Stale = -3;
    public const int System = -4;
    public const int TooLarge = -5;
    public const int NoFreeSlot = -6;
    public const int Layout = -7;
    public const int Full = -8;
    public const int Empty = -9;
    public const int Timeout = -10;
    public const int NotHeld = -11;
    public const int NoSuchSlot = -12;
    public const int Unsupported = -13;
    public const int NoBeacon = -14;
}
