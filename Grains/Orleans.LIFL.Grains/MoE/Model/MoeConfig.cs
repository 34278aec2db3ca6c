using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// The shape of a Mixtral-style decoder: byte-level tokens, <see cref="Layers"/> layers of RMSNorm + multi-head
/// attention with rotary positions + RMSNorm + a router choosing <see cref="TopK"/> of <see cref="Experts"/> SwiGLU
/// experts, a final norm and the LM head. Attention uses as many key/value heads as query heads.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record MoeConfig
{
    /// <summary>Byte-level: one token per byte value.</summary>
    public const int ByteVocabulary = 256;

    [Id(0)]
    public int Layers { get; init; } = 2;

    [Id(1)]
    public int ModelDim { get; init; } = 64;

    [Id(2)]
    public int Heads { get; init; } = 4;

    [Id(3)]
    public int Experts { get; init; } = 8;

    [Id(4)]
    public int TopK { get; init; } = 2;

    /// <summary>The hidden width of each expert's SwiGLU feed-forward.</summary>
    [Id(5)]
    public int FeedForwardDim { get; init; } = 128;

    [Id(6)]
    public int Vocabulary { get; init; } = ByteVocabulary;

    [Id(7)]
    public double RopeTheta { get; init; } = 10_000;

    [Id(8)]
    public float NormEpsilon { get; init; } = 1e-5f;

    /// <summary>The longest sequence (prompt and generated tokens) a session may hold.</summary>
    [Id(9)]
    public int MaxSequence { get; init; } = 512;

    public int HeadDim => ModelDim / Heads;

    /// <summary>Values in one expert's three matrices.</summary>
    public long ExpertParameters => 3L * FeedForwardDim * ModelDim;

    /// <summary>What is wrong with this configuration, or null.</summary>
    public string? Problem() =>
        Layers < 1 ? $"Layers is {Layers}; it must be at least 1"
        : ModelDim < 2 ? $"ModelDim is {ModelDim}; it must be at least 2"
        : Heads < 1 || ModelDim % Heads != 0 ? $"ModelDim {ModelDim} is not divisible into {Heads} heads"
        : HeadDim % 2 != 0 ? $"the head dimension {HeadDim} must be even (rotary positions rotate pairs)"
        : Experts < 1 ? $"Experts is {Experts}; it must be at least 1"
        : TopK < 1 || TopK > Experts ? $"TopK is {TopK}; it must be between 1 and Experts ({Experts})"
        : FeedForwardDim < 1 ? $"FeedForwardDim is {FeedForwardDim}; it must be at least 1"
        : Vocabulary < 1 ? $"Vocabulary is {Vocabulary}; it must be at least 1"
        : !(RopeTheta > 1) || double.IsInfinity(RopeTheta) ? $"RopeTheta is {RopeTheta}; it must be a finite number above 1"
        : !(NormEpsilon > 0) || float.IsInfinity(NormEpsilon) ? $"NormEpsilon is {NormEpsilon}; it must be positive"
        : MaxSequence < 1 ? $"MaxSequence is {MaxSequence}; it must be at least 1"
        : null;

    /// <summary>Throws when <see cref="Problem"/> finds something.</summary>
    public MoeConfig Validated() => Problem() is { } problem ? throw new ArgumentException($"The MoE configuration is invalid: {problem}.") : this;
}
