using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace Orleans.LIFL.Benchmarks.Harness;

/// <summary>What a figure was measured on, so figures from different machines are not compared blindly.</summary>
public static class MachineDescription
{
    public static JsonObject ToJson() => new()
    {
        ["processor_count"] = Environment.ProcessorCount,
        ["os"] = RuntimeInformation.OSDescription,
        ["architecture"] = RuntimeInformation.ProcessArchitecture.ToString(),
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["server_gc"] = GCSettings.IsServerGC,
        // The lifl program's (this process's and the silos' it starts): what its gen0 may fill before a collection.
        ["gc_gen0_max_budget_mb"] = GC.GetConfigurationVariables().TryGetValue("GCGen0MaxBudget", out var budget)
            ? Convert.ToDouble(budget, CultureInfo.InvariantCulture) / (1 << 20)
            : null,
        ["optimized_build"] = IsOptimized(typeof(MachineDescription).Assembly),
    };

    /// <summary>False for a Debug build: its figures say nothing about the runtime's speed.</summary>
    public static bool IsOptimized(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled != true;
    }
}
