using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// What one decoding position added to a session: its keys and values in every layer (layer-major, ModelDim each) and
/// the token sampled from its logits (−1 for a prompt position whose next token is given by the prompt). Its sequence
/// number is its position.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record KvSegment(
    [property: Id(0)] int Position,
    [property: Id(1)] float[] Keys,
    [property: Id(2)] float[] Values,
    [property: Id(3)] int Output);

/// <summary>A commit record: positions 0 .. <see cref="Through"/> are stored; <see cref="Sequence"/> numbers the commits of a store.</summary>
[GenerateSerializer]
[Immutable]
public sealed record KvCommit([property: Id(0)] long Sequence, [property: Id(1)] int Through, [property: Id(2)] DateTime AtUtc);

/// <summary>What a store holds for a request: the request and the committed segments, in position order.</summary>
/// <param name="Request">Null when the store knows nothing of the request (new, or its silo died with it).</param>
[GenerateSerializer]
[Immutable]
public sealed record KvCheckpoint(
    [property: Id(0)] GenerationRequest? Request,
    [property: Id(1)] KvSegment[] Segments,
    [property: Id(2)] KvCommit? LastCommit)
{
    /// <summary>The silo of the store that answered.</summary>
    [Id(3)]
    public string? Silo { get; init; }
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
