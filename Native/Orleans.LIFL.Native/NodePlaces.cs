using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Orleans.LIFL.Dataplane;

/// <summary>
/// A counting semaphore shared by the processes of one machine: <see cref="Count"/> places, each an empty file in
/// /dev/shm (lifl.NAME.place.I) held with an exclusive flock while a process uses it. The kernel drops the locks of a
/// process that dies, so a killed process never keeps a place. Taking a place never blocks; a taker that finds none
/// tries again later (there is no cross-process event to wait on).
/// </summary>
public sealed partial class NodePlaces : IDisposable
{
    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;
    private const int Unlock = 8;
    private const int WouldBlock = 11; // EWOULDBLOCK = EAGAIN on Linux
    private const int ReadWrite = 2; // O_RDWR
    private const int Create = 0x40; // O_CREAT
    private const int CloseOnExec = 0x80000; // O_CLOEXEC
    private const int OwnerReadWrite = 0x180; // 0600

    private readonly Lock _lock = new();
    private readonly SafeFileHandle[] _files;
    private readonly string[] _paths;
    private readonly bool[] _held;
    private bool _disposed;

    /// <param name="name">The places' name: processes that give the same name and count share them.</param>
    /// <param name="count">How many places; a process asking for fewer than another uses the first of them.</param>
    public NodePlaces(string name, int count, string directory = "/dev/shm")
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        Name = name;
        _files = new SafeFileHandle[count];
        _paths = new string[count];
        _held = new bool[count];
        for (var i = 0; i < count; i++)
        {
            // Opened with open(2), not File.OpenHandle: .NET takes a shared flock of its own on the files it opens,
            // which would keep every other process from ever taking the exclusive one.
            var path = Path.Combine(directory, $"lifl.{name}.place.{i}");
            var fd = OpenNative(path, ReadWrite | Create | CloseOnExec, OwnerReadWrite);
            if (fd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                foreach (var file in _files.Take(i))
                {
                    file.Dispose();
                }

                throw new DataplaneException($"Opening {path}, place {i} of the node's places '{name}': {Marshal.GetPInvokeErrorMessage(errno)}.", errno);
            }

            _files[i] = new SafeFileHandle(fd, ownsHandle: true);
            _paths[i] = path;
        }
    }

    public string Name { get; }

    public int Count => _files.Length;

    /// <summary>Places this process holds now.</summary>
    public int Held
    {
        get
        {
            lock (_lock)
            {
                return _held.Count(h => h);
            }
        }
    }

    /// <summary>Takes a free place (free in every process of the machine); its index, or -1 when all are taken.</summary>
    public int TryTake()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            for (var i = 0; i < _files.Length; i++)
            {
                // A lock this process holds would be granted again on the same file: those places are skipped.
                if (_held[i])
                {
                    continue;
                }

                if (Flock(_files[i], LockExclusive | LockNonBlocking) == 0)
                {
                    _held[i] = true;
                    return i;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != WouldBlock)
                {
                    throw new DataplaneException($"Taking place {i} of the node's places '{Name}': flock failed ({Marshal.GetPInvokeErrorMessage(errno)}).", errno);
                }
            }

            return -1;
        }
    }

    /// <summary>Gives back a place <see cref="TryTake"/> took.</summary>
    public void Give(int place)
    {
        lock (_lock)
        {
            if (place < 0 || place >= _files.Length || !_held[place])
            {
                throw new ArgumentOutOfRangeException(nameof(place), place, $"Place {place} of the node's places '{Name}' is not held by this process.");
            }

            _held[place] = false;
            if (!_disposed)
            {
                _ = Flock(_files[place], Unlock);
            }
        }
    }

    /// <summary>
    /// Removes the place files in <paramref name="directory"/> whose places <paramref name="orphaned"/> says nobody will
    /// use again (their owner is gone, as a pool whose segment is gone) and that no process holds; returns how many.
    /// Processes killed with SIGKILL never remove theirs.
    /// </summary>
    public static int RemoveOrphans(Func<string, bool> orphaned, string directory = "/dev/shm")
    {
        ArgumentNullException.ThrowIfNull(orphaned);
        var removed = 0;
        foreach (var path in Directory.EnumerateFiles(directory, "lifl.*.place.*"))
        {
            var file = Path.GetFileName(path);
            var name = file["lifl.".Length..file.LastIndexOf(".place.", StringComparison.Ordinal)];
            if (!orphaned(name))
            {
                continue;
            }

            var fd = OpenNative(path, ReadWrite | CloseOnExec, 0);
            if (fd < 0)
            {
                continue;
            }

            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            if (Flock(handle, LockExclusive | LockNonBlocking) == 0)
            {
                File.Delete(path);
                removed++;
            }
        }

        return removed;
    }

    /// <summary>
    /// Closes the files, which gives back every place still held; removes them when no process holds any (a process
    /// opening them at that instant keeps its place on the removed file: one more transfer than the limit, once).
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_files.Select((file, i) => _held[i] || Flock(file, LockExclusive | LockNonBlocking) == 0).All(free => free))
            {
                foreach (var path in _paths)
                {
                    File.Delete(path);
                }
            }

            foreach (var file in _files)
            {
                file.Dispose();
            }
        }
    }

    private static int Flock(SafeFileHandle file, int operation)
    {
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return FlockNative((int)file.DangerousGetHandle(), operation);
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenNative(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockNative(int fd, int operation);
}
