using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>One replica of a logical expert: the expert grain's key and the silo it was placed on.</summary>
[GenerateSerializer]
[Immutable]
public sealed record ExpertReplica([property: Id(0)] string Key, [property: Id(1)] string Silo);

/// <summary>
/// A deployment's expert routing table: for every logical expert (layer, expert) its candidates, the primary first and
/// then the pre-loaded shadows, each on another silo. Sessions hold a copy and fail over along it on their own; the
/// deployment sends a new version when it promotes shadows or adds one.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record ExpertRoutingTable
{
    [Id(0)]
    public required string Deployment { get; init; }

    /// <summary>Grows with every change; a session keeps the newest it has seen.</summary>
    [Id(1)]
    public long Version { get; init; }

    /// <summary>The deployment's restart count (baseline mode); expert keys carry it, so a restart loads every expert afresh.</summary>
    [Id(2)]
    public int Epoch { get; init; }

    [Id(3)]
    public int Layers { get; init; }

    [Id(4)]
    public int Experts { get; init; }

    /// <summary>Row <c>layer × Experts + expert</c>: the candidates, primary first.</summary>
    [Id(5)]
    public required ExpertReplica[][] Candidates { get; init; }

    /// <summary>Silos the deployment found dead: no candidate on them is tried.</summary>
    [Id(6)]
    public string[] DeadSilos { get; init; } = [];

    public IReadOnlyList<ExpertReplica> For(int layer, int expert) => Candidates[(layer * Experts) + expert];

    /// <summary>Every replica of the table, once.</summary>
    public IEnumerable<ExpertReplica> Replicas => Candidates.SelectMany(c => c);
}
