using System.Net;

namespace Orleans.LIFL.Dashboard;

/// <summary>Where the dashboard listens and who may read it (bound from <c>Lifl:Dashboard</c>).</summary>
public sealed class DashboardOptions
{
    public const string DefaultListenAddress = "127.0.0.1";
    public const int DefaultPort = 8080;

    /// <summary>The address to bind; loopback unless configured.</summary>
    public string ListenAddress { get; set; } = DefaultListenAddress;

    /// <summary>The TCP port (0: any free one, reported by <see cref="DashboardServer.Address"/>).</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>
    /// When set, every request must carry it (<c>Authorization: Bearer TOKEN</c>, or <c>?access_token=TOKEN</c> for
    /// the browser's event stream). Required when <see cref="ListenAddress"/> is not a loopback address.
    /// </summary>
    public string? AccessToken { get; set; }

    /// <summary>How often the event stream sends a new snapshot.</summary>
    public TimeSpan RefreshPeriod { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>What is wrong with the settings, naming the setting, or null.</summary>
    public string? Problem() =>
        !IPAddress.TryParse(ListenAddress, out var address) ? $"Lifl:Dashboard:ListenAddress '{ListenAddress}' is not an IP address"
        : Port is < 0 or > 65535 ? $"Lifl:Dashboard:Port {Port} is not a TCP port"
        : !IPAddress.IsLoopback(address) && string.IsNullOrEmpty(AccessToken)
            ? $"Lifl:Dashboard:ListenAddress {ListenAddress} is reachable from other machines: set Lifl:Dashboard:AccessToken"
        : AccessToken is { Length: > 0 and < 16 } ? "Lifl:Dashboard:AccessToken must be at least 16 characters"
        : !(RefreshPeriod > TimeSpan.Zero) ? $"Lifl:Dashboard:RefreshPeriod {RefreshPeriod} must be positive"
        : null;
}
