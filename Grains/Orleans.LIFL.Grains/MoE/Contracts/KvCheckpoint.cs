using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// What decoding positions <see cref="From"/> .. <see cref="From"/> + <see cref="Count"/> − 1 added to a session, in a
/// buffer of the node's shared pool (a grain call carries a descriptor to a silo of the same node, and another node's
/// silo has the bytes streamed into its pool): per position its keys in every layer (layer-major, ModelDim floats
/// each), then its values likewise, and in <see cref="Outputs"/> the token sampled from its logits (−1 for a prompt
/// position whose next token is given by the prompt). A position's sequence number is its position. Whoever receives
/// one holds its own reference to the bytes and disposes it.
/// </summary>
[GenerateSerializer]
public sealed record KvSegments(
    [property: Id(0)] int From,
    [property: Id(1)] int[] Outputs,
    [property: Id(2)] SharedBuffer Bytes) : IDisposable
{
    public int Count => Outputs.Length;

    /// <summary>The bytes one position takes for a cache <paramref name="width"/> floats wide (layers × model dimension): keys and values.</summary>
    public static long BytesPerPosition(int width) => 2L * width * sizeof(float);

    /// <summary>
    /// A new batch of <paramref name="count"/> positions from <paramref name="from"/> in a buffer rented from
    /// <paramref name="pool"/> (its floats and outputs for the caller to fill).
    /// </summary>
    public static KvSegments Rent(SharedBufferPool pool, int from, int count, int width)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        return new KvSegments(from, new int[count], pool.Rent(count * BytesPerPosition(width)));
    }

    /// <summary>What is wrong with this batch for a cache <paramref name="width"/> floats wide, or null.</summary>
    public string? Problem(int width) =>
        From < 0 ? $"it starts at position {From}"
        : Count == 0 ? "it holds no positions"
        : Bytes.Length != Count * BytesPerPosition(width)
            ? $"its {Count} position(s) come in {Bytes.Length:N0} bytes, not the {Count * BytesPerPosition(width):N0} that {width} keys and {width} values a position take"
        : null;

    /// <summary>The keys of the <paramref name="index"/>th position of the batch (all layers).</summary>
    public Span<float> Keys(int index, int width) => Bytes.AsSpan<float>().Slice(index * 2 * width, width);

    /// <summary>The values of the <paramref name="index"/>th position of the batch (all layers).</summary>
    public Span<float> Values(int index, int width) => Bytes.AsSpan<float>().Slice((index * 2 * width) + width, width);

    public void Dispose() => Bytes.Dispose();
}

/// <summary>A commit record: positions 0 .. <see cref="Through"/> are stored; <see cref="Sequence"/> numbers the commits of a store.</summary>
[GenerateSerializer]
[Immutable]
public sealed record KvCommit([property: Id(0)] long Sequence, [property: Id(1)] int Through, [property: Id(2)] DateTime AtUtc);

/// <summary>What a store holds for a request: the request and the committed positions from 0 (none: null). Dispose it to let the bytes go.</summary>
/// <param name="Request">Null when the store knows nothing of the request (new, or its silo died with it).</param>
[GenerateSerializer]
public sealed record KvCheckpoint(
    [property: Id(0)] GenerationRequest? Request,
    [property: Id(1)] KvSegments? Segments,
    [property: Id(2)] KvCommit? LastCommit) : IDisposable
{
    /// <summary>The silo of the store that answered.</summary>
    [Id(3)]
    public string? Silo { get; init; }

    public void Dispose() => Segments?.Dispose();
}

/// <summary>A store's account of one request's commits, for checking their order (−1 and none: it does not hold the request).</summary>
[GenerateSerializer]
[Immutable]
public sealed record KvStoreStatus(
    [property: Id(0)] string Store,
    [property: Id(1)] string RequestId,
    [property: Id(2)] string Silo,
    [property: Id(3)] int CommittedThrough,
    [property: Id(4)] KvCommit[] Commits,
    [property: Id(5)] long BytesStored);
