using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.TestGrains;

/// <summary>
/// Lives on the silo whose address is its key (activate it through that silo) and moves shared buffers to and from
/// the courier of another silo, reporting what arrived and what its silo's dataplane saw.
/// </summary>
public interface IBufferCourierGrain : IGrainWithStringKey
{
    /// <summary>Fills a buffer of <paramref name="length"/> bytes from <paramref name="seed"/> and passes it to the courier <paramref name="peer"/>.</summary>
    Task<Delivery> SendTo(string peer, int length, int seed);

    /// <summary>Asks the courier <paramref name="peer"/> for a filled buffer (returned from its call) and checks it.</summary>
    Task<Delivery> FetchFrom(string peer, int length, int seed);

    /// <summary>Looks at what arrived, then disposes it.</summary>
    Task<BufferSeen> Receive(SharedBuffer buffer);

    /// <summary>A new buffer; this grain keeps its own reference until the next call (the caller gets another).</summary>
    Task<SharedBuffer> Make(int length, int seed);

    /// <summary>A new buffer this grain does not keep: its reference moves to the caller.</summary>
    Task<SharedBuffer> Produce(int length, int seed);

    /// <summary>Rents <paramref name="count"/> buffers of <paramref name="length"/> bytes and keeps them.</summary>
    Task<int> Hold(int count, int length);

    Task<PoolReport> Pool();

    Task<DataplaneReport> Dataplane();
}

/// <summary>What a grain saw of a shared buffer it was given: where its bytes are, and who else holds them.</summary>
[GenerateSerializer]
public sealed record BufferSeen(
    [property: Id(0)] string Pool,
    [property: Id(1)] ulong Offset,
    [property: Id(2)] int Length,
    [property: Id(3)] ulong Checksum,
    [property: Id(4)] int ReferencesWhileHeld,
    [property: Id(5)] string Silo);

/// <summary>A buffer sent (its pool, offset and checksum) and what the other side saw of it.</summary>
[GenerateSerializer]
public sealed record Delivery(
    [property: Id(0)] string SentPool,
    [property: Id(1)] ulong SentOffset,
    [property: Id(2)] ulong Sent,
    [property: Id(3)] BufferSeen Seen);

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

[GenerateSerializer]
public sealed record DataplaneReport(
    [property: Id(0)] bool EbpfActive,
    [property: Id(1)] string? EbpfUnavailableReason,
    [property: Id(2)] long SocketsAdded,
    [property: Id(3)] long MessagesRedirected,
    [property: Id(4)] long MessageProgramRuns,
    [property: Id(5)] string NodeId);

[PreferLocalPlacement]
public sealed class BufferCourierGrain(SharedBufferPool pool, INodeDataplane dataplane) : Grain, IBufferCourierGrain
{
    private readonly List<SharedBuffer> _held = [];
    private SharedBuffer? _lastMade;

    public async Task<Delivery> SendTo(string peer, int length, int seed)
    {
        using var buffer = pool.Rent(length);
        TestPattern.Fill(buffer.Span, seed);
        var seen = await GrainFactory.GetGrain<IBufferCourierGrain>(peer).Receive(buffer);
        return new Delivery(pool.Name, buffer.Descriptor.Offset, TestPattern.Checksum(buffer.Span), seen);
    }

    public async Task<Delivery> FetchFrom(string peer, int length, int seed)
    {
        using var reference = pool.Rent(length);
        TestPattern.Fill(reference.Span, seed);
        using var buffer = await GrainFactory.GetGrain<IBufferCourierGrain>(peer).Make(length, seed);
        return new Delivery(peer, 0, TestPattern.Checksum(reference.Span), See(buffer));
    }

    public Task<BufferSeen> Receive(SharedBuffer buffer)
    {
        using (buffer)
        {
            return Task.FromResult(See(buffer));
        }
    }

    public Task<SharedBuffer> Make(int length, int seed)
    {
        _lastMade?.Dispose();
        _lastMade = pool.Rent(length);
        TestPattern.Fill(_lastMade.Span, seed);
        return Task.FromResult(_lastMade);
    }

    public Task<SharedBuffer> Produce(int length, int seed)
    {
        var buffer = pool.Rent(length);
        TestPattern.Fill(buffer.Span, seed);
        return Task.FromResult(buffer.MoveToCaller());
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

    public Task<DataplaneReport> Dataplane()
    {
        var ebpf = dataplane.GetEbpfStatistics();
        return Task.FromResult(new DataplaneReport(dataplane.EbpfActive, dataplane.EbpfUnavailableReason,
            ebpf?.SocketsAdded ?? 0, ebpf?.MessagesRedirected ?? 0, ebpf?.MessageProgramRuns ?? 0, dataplane.NodeId));
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

    private BufferSeen See(SharedBuffer buffer) => new(
        buffer.Pool.Name, buffer.Descriptor.Offset, buffer.Length, TestPattern.Checksum(buffer.Span),
        buffer.Pool.ReferenceCount(buffer.Descriptor), GrainContext.Silo.ToString());
}
