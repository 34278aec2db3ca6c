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
}

internal sealed class LocalSiloDetails(Core.Silo silo) : ILocalSiloDetails
{
    public SiloAddress SiloAddress => silo.Address;

    public IPEndPoint? GatewayAddress => silo.GatewayEndpoint;

    public string Name => silo.Name;

    public SiloStatus Status => silo.Status;

    public Task DeclaredDead => silo.DeclaredDead;
}
