namespace Orleans.LIFL.Silo;

/// <summary>
/// The command-line options of <c>lifl silo</c> and the configuration keys they set. Settings come, later ones
/// winning, from appsettings.json (next to the program and in the working directory, or --config FILE),
/// environment variables (Lifl__Cluster__Secret, or the short LIFL_SECRET, LIFL_POSTGRES, LIFL_CLUSTER_ID), and
/// these options.
/// </summary>
public static class SiloSettings
{
    public static readonly IReadOnlyDictionary<string, string> CommandLineKeys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["--cluster-id"] = "Lifl:Cluster:ClusterId",
        ["--service-id"] = "Lifl:Cluster:ServiceId",
        ["--secret"] = "Lifl:Cluster:Secret",
        ["--postgres"] = "Lifl:PostgreSql:ConnectionString",
        ["--listen"] = "Lifl:Endpoints:ListenAddress",
        ["--advertise"] = "Lifl:Endpoints:AdvertisedAddress",
        ["--silo-port"] = "Lifl:Endpoints:SiloPort",
        ["--gateway-port"] = "Lifl:Endpoints:GatewayPort",
        ["--name"] = "Lifl:Silo:SiloName",
        ["--node-id"] = "Lifl:Dataplane:NodeId",
        ["--pool"] = "Lifl:Dataplane:PoolName",
        ["--ebpf"] = "Lifl:Dataplane:Ebpf",
        ["--storage"] = "Lifl:Silo:Storage",
        ["--dashboard"] = "Lifl:Dashboard:Enabled",
        ["--dashboard-port"] = "Lifl:Dashboard:Port",
        ["--dashboard-listen"] = "Lifl:Dashboard:ListenAddress",
        ["--dashboard-token"] = "Lifl:Dashboard:AccessToken",
        ["--exit-with-launcher"] = "Lifl:Silo:ExitWithLauncher",
    };

    /// <summary>Short environment variables, for containers and scripts.</summary>
    public static readonly IReadOnlyDictionary<string, string> EnvironmentKeys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["LIFL_CLUSTER_ID"] = "Lifl:Cluster:ClusterId",
        ["LIFL_SERVICE_ID"] = "Lifl:Cluster:ServiceId",
        ["LIFL_SECRET"] = "Lifl:Cluster:Secret",
        ["LIFL_POSTGRES"] = "Lifl:PostgreSql:ConnectionString",
    };

    /// <summary>Printed on standard output once the silo is active, for scripts and tests that start silos.</summary>
    public const string ReadyMarker = "LIFL-SILO-READY";
}
