using System.Runtime.InteropServices;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.TestGrains;

/// <summary>
/// Lives on the silo whose address is its key (activate it through that silo's gateway) and moves shared buffers
/// to and from the courier of another silo, reporting what arrived and what its silo's pool saw.
/// </summary>
public interface IBufferCourierGrain : IGrainWithStringKey
{
    /// <summary>Fills a buffer of <paramref name="length"/> bytes from <paramref name="seed"/> and passes it to the courier <paramref name="peer"/>.</summary>
    Task<Delivery> SendTo(string peer, int length, int seed);

    /// <summary>Asks the courier <paramref name="peer"/> for a filled buffer (returned from its call) and checks it.</summary>
    Task<Delivery> FetchFrom(string peer, int length, int seed);

    /// <summary>The checksum of what arrived; the buffer is disposed.</summary>
    Task<ulong> Receive(SharedBuffer buffer);

    Task<SharedBuffer> Make(int length, int seed);

    /// <summary>Rents <paramref name="count"/> buffers of <paramref name="length"/> bytes and keeps them.</summary>
    Task<int> Hold(int count, int length);

    Task<PoolReport> Pool();
}

[GenerateSerializer]
public sealed record Delivery(
    [property: Id(0)] ulong Sent,
    [property: Id(1)] ulong Received,
    [property: Id(2)] string FromSilo,
    [property: Id(3)] string ToSilo);

[GenerateSerializer]
public sealed record PoolReport(
    [property: Id(0)] string Silo,
    [property: Id(1)] string Pool,
    [property: Id(2)] int Slot,
    [property: Id(3)] long BytesCopied,
    [property: Id(4)] long BytesHandedOff,
    [property: Id(5)] long LiveHandles,
    [property: Id(6)] long LeakedHandles,
    [property: Id(7)] long LiveBuffers,
    [property: Id(8)] long UsedBytes);

[PreferLocalPlacement]
public sealed class BufferCourierGrain(SharedBufferPool pool) : Grain, IBufferCourierGrain
{
    private readonly List<SharedBuffer> _held = [];
    private SharedBuffer? _lastMade;

    public async Task<Delivery> SendTo(string peer, int length, int seed)
    {
        using var buffer = pool.Rent(length);
        Fill(buffer.Span, seed);
        var sent = Checksum(buffer.Span);
        var received = await GrainFactory.GetGrain<IBufferCourierGrain>(peer).Receive(buffer);
        return new Delivery(sent, received, GrainContext.Silo.ToString(), peer);
    }

    public async Task<Delivery> FetchFrom(string peer, int length, int seed)
    {
        using var buffer = await GrainFactory.GetGrain<IBufferCourierGrain>(peer).Make(length, seed);
        using var reference = pool.Rent(length);
        Fill(reference.Span, seed);
        return new Delivery(Checksum(reference.Span), Checksum(buffer.Span), peer, GrainContext.Silo.ToString());
    }

    public Task<ulong> Receive(SharedBuffer buffer)
    {
        using (buffer)
        {
            return Task.FromResult(Checksum(buffer.Span));
        }
    }

    public Task<SharedBuffer> Make(int length, int seed)
    {
        // The caller gets its own reference; this grain keeps its own until the next Make.
        _lastMade?.Dispose();
        _lastMade = pool.Rent(length);
        Fill(_lastMade.Span, seed);
        return Task.FromResult(_lastMade);
    }

    public Task<int> Hold(int count, int length)
    {
        for (var i = 0; i < count; i++)
        {
            var buffer = pool.Rent(length);
            buffer.Span.Fill((byte)i);
            _held.Add(buffer);
        }

        return Task.FromResult(_held.Count);
    }

    public Task<PoolReport> Pool()
    {
        var stats = pool.GetStatistics();
        return Task.FromResult(new PoolReport(GrainContext.Silo.ToString(), stats.Name, stats.Slot, stats.BytesCopied, stats.BytesHandedOff,
            stats.LiveHandles, stats.LeakedHandles, stats.LiveBuffers, stats.UsedBytes));
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        foreach (var buffer in _held)
        {
            buffer.Dispose();
        }

        _held.Clear();
        _lastMade?.Dispose();
        return Task.CompletedTask;
    }

    public static void Fill(Span<byte> bytes, int seed)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        var state = (ulong)seed * 0x9E3779B97F4A7C15UL + 1;
        for (var i = 0; i < words.Length; i++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            words[i] = state;
        }

        for (var i = words.Length * 8; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(seed + i);
        }
    }

    public static ulong Checksum(ReadOnlySpan<byte> bytes)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        var hash = 0xCBF29CE484222325UL;
        foreach (var word in words)
        {
            hash = (hash ^ word) * 0x100000001B3UL;
        }

        for (var i = words.Length * 8; i < bytes.Length; i++)
        {
            hash = (hash ^ bytes[i]) * 0x100000001B3UL;
        }

        return hash ^ (ulong)bytes.Length;
    }
}
