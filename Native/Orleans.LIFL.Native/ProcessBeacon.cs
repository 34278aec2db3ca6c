using System.Text;

namespace Orleans.LIFL.Dataplane;

/// <summary>What a watcher knows of a beacon's owner.</summary>
public enum BeaconState
{
    /// <summary>Its owner holds it: alive.</summary>
    Lit = 0,

    /// <summary>Its owner put it out (a graceful stop): no death to act on.</summary>
    Out = 1,

    /// <summary>Its owner's holding thread ended without putting it out: the owner's process is gone.</summary>
    Died = 2,
}

/// <summary>
/// A process beacon of this process (Native/include/lifl_native.h): a small file of the node's shared memory holding
/// robust mutexes that a thread of this process keeps locked until <see cref="Dispose"/> puts the beacon out. If the
/// process dies instead (kill -9, a crash, an exit without stopping), the kernel releases them as that thread exits,
/// before the process's memory is taken down and its sockets closed, and every <see cref="BeaconWatch"/> of it on the
/// node (each waiting on a mutex of its own) hears of the death at once. One thread per beacon, and one per watch.
/// </summary>
public sealed class ProcessBeacon : IDisposable
{
    private readonly ManualResetEventSlim _putOut = new();
    private readonly Thread _holder;
    private bool _disposed;

    private ProcessBeacon(string directory, string name)
    {
        (Directory, Name) = (directory, name);
        var lit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _holder = new Thread(() => Hold(lit)) { IsBackground = true, Name = $"lifl beacon {name}" };
        _holder.Start();
        lit.Task.GetAwaiter().GetResult();
    }

    public string Directory { get; }

    public string Name { get; }

    /// <summary>Lights the beacon <paramref name="name"/> (see <see cref="NameOf"/>) in <paramref name="directory"/>, replacing a dead owner's leftover.</summary>
    /// <exception cref="DataplaneException">The name is not valid, or the file could not be made.</exception>
    public static ProcessBeacon Light(string directory, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new ProcessBeacon(directory, name);
    }

    /// <summary>
    /// The beacon name of a process known by <paramref name="id"/> (a silo address, "127.0.0.1:11111@123"): its
    /// characters outside letters, digits, '.', '-' and '_' become '_'.
    /// </summary>
    public static string NameOf(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var name = new StringBuilder(id.Length);
        foreach (var c in id)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_');
        }

        return name.Length <= 100 ? name.ToString()
            : throw new ArgumentException($"'{id}' is too long for a beacon name ({name.Length} characters, at most 100).", nameof(id));
    }

    private void Hold(TaskCompletionSource lit)
    {
        var status = NativeMethods.BeaconLight(Directory, Name, out var beacon);
        if (status != NativeStatus.Ok)
        {
            lit.SetException(SharedBufferPool.Failure($"Lighting the process beacon {Name} in {Directory}", status));
            return;
        }

        lit.SetResult();
        _putOut.Wait();
        NativeMethods.BeaconPutOut(beacon);
    }

    /// <summary>Puts the beacon out: its watchers see <see cref="BeaconState.Out"/>, and its file is removed.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _putOut.Set();
        _holder.Join();
        _putOut.Dispose();
    }
}

/// <summary>
/// A watch of another process's <see cref="ProcessBeacon"/>, on a thread of its own: when the beacon's owner dies,
/// <c>onDied</c> runs once on that thread (keep it short) and the dead owner's file is removed; when the owner puts it out, the watch ends quietly. <see cref="Ended"/> says how it ended.
/// </summary>
public sealed class BeaconWatch : IDisposable
{
    /// <summary>How long one wait lasts before the thread looks whether the watch was disposed.</summary>
    private const int SliceMilliseconds = 250;

    private readonly string _directory;
    private readonly nint _beacon;
    private readonly Action _onDied;
    private readonly TaskCompletionSource<BeaconState> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _disposed;

    private BeaconWatch(string directory, string name, nint beacon, Action onDied)
    {
        (_directory, Name, _beacon, _onDied) = (directory, name, beacon, onDied);
        new Thread(Watch) { IsBackground = true, Name = $"lifl beacon watch {name}" }.Start();
    }

    public string Name { get; }

    /// <summary>Completes with <see cref="BeaconState.Died"/> or <see cref="BeaconState.Out"/>, or <see cref="BeaconState.Lit"/> once disposed.</summary>
    public Task<BeaconState> Ended => _ended.Task;

    /// <summary>Watches the beacon <paramref name="name"/> of <paramref name="directory"/>; null if no process of this node lit one.</summary>
    /// <exception cref="DataplaneException">The beacon is there but could not be opened.</exception>
    public static BeaconWatch? Open(string directory, string name, Action onDied)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(onDied);
        var status = NativeMethods.BeaconOpen(directory, name, out var beacon);
        return status switch
        {
            NativeStatus.Ok => new BeaconWatch(directory, name, beacon, onDied),
            NativeStatus.NoBeacon => null,
            _ => throw SharedBufferPool.Failure($"Opening the process beacon {name} in {directory}", status),
        };
    }

    private void Watch()
    {
        try
        {
            while (!_disposed)
            {
                var state = NativeMethods.BeaconWait(_beacon, SliceMilliseconds);
                if (state < 0)
                {
                    _ended.TrySetException(SharedBufferPool.Failure($"Watching the process beacon {Name}", state));
                    return;
                }

                if ((BeaconState)state == BeaconState.Died)
                {
                    _onDied();
                    NativeMethods.BeaconRemoveIfDead(_directory, Name, out _);
                }

                if ((BeaconState)state != BeaconState.Lit)
                {
                    _ended.TrySetResult((BeaconState)state);
                    return;
                }
            }

            _ended.TrySetResult(BeaconState.Lit);
        }
        catch (Exception error)
        {
            _ended.TrySetException(error);
        }
        finally
        {
            NativeMethods.BeaconClose(_beacon);
        }
    }

    /// <summary>Stops watching (within a fraction of a second; the thread closes the handle as it ends).</summary>
    public void Dispose() => _disposed = true;
}
