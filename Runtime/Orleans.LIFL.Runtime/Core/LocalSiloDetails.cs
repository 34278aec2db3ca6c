using System.Net;
using Orleans.LIFL.Runtime.MembershipService;

namespace Orleans.LIFL.Runtime;

/// <summary>The silo running in this host, as host code (a silo program, the dashboard) sees it.</summary>
public interface ILocalSiloDetails
{
    SiloAddress SiloAddress { get; }

    /// <summary>Where clients connect, when this silo is a TCP gateway.</summary>
    IPEndPoint? GatewayAddress { get; }

    string Name { get; }

    SiloStatus Status { get; }

    /// <summary>Completes if the cluster declares this silo dead (it then stops serving).</summary>
    Task DeclaredDead { get; }

    /// <summary>The active silos as this silo sees them now, sorted.</summary>
    IReadOnlyList<SiloAddress> ActiveSilos { get; }

    /// <summary>The grains with an activation on this silo now (stateless workers included once each).</summary>
    IReadOnlyCollection<GrainId> GetActiveGrains();

    /// <summary>Every silo of the membership table as this silo last read it, dead ones included, sorted by address.</summary>
    IReadOnlyList<MembershipEntry> Members { get; }
}

internal sealed class LocalSiloDetails(Core.Silo silo) : ILocalSiloDetails
{
    public SiloAddress SiloAddress => silo.Address;

    public IPEndPoint? GatewayAddress => silo.GatewayEndpoint;

    public string Name => silo.Name;

    public SiloStatus Status => silo.Status;

    public Task DeclaredDead => silo.DeclaredDead;

    public IReadOnlyList<SiloAddress> ActiveSilos => silo.Membership.CurrentView.ActiveSilos;

    public IReadOnlyCollection<GrainId> GetActiveGrains() => silo.Catalog.Enumerate().Select(a => a.GrainId).ToHashSet();

    public IReadOnlyList<MembershipEntry> Members => [.. silo.Membership.CurrentView.Members.Values.OrderBy(m => m.Silo)];
}

internal sealed class ClusterResources(Core.Silo silo) : LIFL.Placement.IClusterResources
{
    public SiloAddress LocalSilo => silo.Address;

    public IReadOnlyList<(SiloAddress Silo, LIFL.Placement.SiloRuntimeStatistics? Statistics)> ActiveSilos() =>
        [.. silo.Membership.CurrentView.ActiveSilos.Select(s => (s, silo.GetStatistics(s)))];
}
