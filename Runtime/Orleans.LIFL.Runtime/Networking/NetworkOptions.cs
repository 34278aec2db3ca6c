using System.Net;
using Microsoft.Extensions.Options;

namespace Orleans.LIFL.Configuration;

/// <summary>Where a silo listens and how others reach it. Networking is off (embedded) unless enabled.</summary>
public sealed class EndpointOptions
{
    public const int DefaultSiloPort = 11111;
    public const int DefaultGatewayPort = 30000;

    /// <summary>Set by UseTcpEndpoints: silos talk over TCP (otherwise only within this process).</summary>
    public bool Enabled { get; set; }

    /// <summary>The address to listen on. Loopback unless configured: a silo is not reachable from other machines by default.</summary>
    public string ListenAddress { get; set; } = IPAddress.Loopback.ToString();

    /// <summary>The address other silos and clients use to reach this one; defaults to the listen address (or loopback when listening on any).</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>Silo-to-silo port; 0 picks a free port.</summary>
    public int SiloPort { get; set; } = DefaultSiloPort;

    /// <summary>Client gateway port; 0 picks a free port, -1 disables the gateway.</summary>
    public int GatewayPort { get; set; } = DefaultGatewayPort;
}

/// <summary>Limits and timings of connections.</summary>
public sealed class ConnectionOptions
{
    /// <summary>Frames larger than this are refused and the connection dropped (guards against hostile lengths).</summary>
    public int MaxFrameBytes { get; set; } = 128 * 1024 * 1024;

    /// <summary>How long a peer has to complete the authenticated handshake.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long to wait for a TCP connection to a silo or gateway.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Messages queued on one connection beyond this are refused (back-pressure instead of unbounded memory).</summary>
    public int MaxQueuedMessages { get; set; } = 250_000;

    /// <summary>
    /// Requests received on one connection and not yet answered beyond which the connection stops reading until
    /// half of them are answered; the peer's writes then wait on TCP, and its own queue limit refuses new calls.
    /// </summary>
    public int MaxInFlightRequests { get; set; } = 20_000;

    /// <summary>
    /// Where the node's process beacons are (Linux shared memory; null turns them off): a silo lights one for its life,
    /// and a silo or client connected to a silo of its node watches it, so that when that silo's process dies its
    /// connections close, and the calls on them fail over, at once rather than when the kernel closes the dead
    /// process's sockets (after taking its memory down: 5-50 ms on a busy node). Empty turns them off too; a directory
    /// that does not exist (not Linux) leaves them off.
    /// </summary>
    public string? BeaconDirectory { get; set; } = "/dev/shm";
}

internal sealed class EndpointOptionsValidator : IValidateOptions<EndpointOptions>
{
    public ValidateOptionsResult Validate(string? name, EndpointOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }

        var errors = new List<string>();
        if (!IPAddress.TryParse(options.ListenAddress, out _))
        {
            errors.Add($"EndpointOptions.ListenAddress '{options.ListenAddress}' is not an IP address.");
        }

        if (options.AdvertisedAddress is { } advertised && !IPAddress.TryParse(advertised, out _))
        {
            errors.Add($"EndpointOptions.AdvertisedAddress '{advertised}' is not an IP address.");
        }

        if (options.SiloPort is < 0 or > 65535)
        {
            errors.Add($"EndpointOptions.SiloPort {options.SiloPort} is not a port (0 picks a free one).");
        }

        if (options.GatewayPort is < -1 or > 65535)
        {
            errors.Add($"EndpointOptions.GatewayPort {options.GatewayPort} is not a port (0 picks a free one, -1 disables the gateway).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class ConnectionOptionsValidator : IValidateOptions<ConnectionOptions>
{
    public ValidateOptionsResult Validate(string? name, ConnectionOptions options)
    {
        var errors = new List<string>();
        if (options.MaxFrameBytes < 64 * 1024)
        {
            errors.Add($"ConnectionOptions.MaxFrameBytes {options.MaxFrameBytes} is below 64 KiB: ordinary calls would not fit.");
        }

        if (options.HandshakeTimeout <= TimeSpan.Zero || options.ConnectTimeout <= TimeSpan.Zero)
        {
            errors.Add($"ConnectionOptions.HandshakeTimeout ({options.HandshakeTimeout}) and ConnectTimeout ({options.ConnectTimeout}) must be positive.");
        }

        if (options.MaxQueuedMessages < 1)
        {
            errors.Add($"ConnectionOptions.MaxQueuedMessages {options.MaxQueuedMessages} must be at least 1.");
        }

        if (options.MaxInFlightRequests < 2)
        {
            errors.Add($"ConnectionOptions.MaxInFlightRequests {options.MaxInFlightRequests} must be at least 2 (reading resumes when half are answered).");
        }

        if (!string.IsNullOrEmpty(options.BeaconDirectory) && !Path.IsPathFullyQualified(options.BeaconDirectory))
        {
            errors.Add($"ConnectionOptions.BeaconDirectory '{options.BeaconDirectory}' is not an absolute path (empty turns the node's process beacons off).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
