using System.Diagnostics;

namespace Orleans.LIFL.Runtime.Core;

/// <summary>CPU and memory of this process, sampled at most once a second.</summary>
internal static class ProcessStatistics
{
    private static readonly Lock Gate = new();
    private static double s_lastCpu;
    private static long s_lastSample;
    private static double s_cpuPercent;

    /// <summary>Process CPU use over the last sampling interval, as a percentage of all cores.</summary>
    public static double CpuUsagePercent
    {
        get
        {
            lock (Gate)
            {
                var now = Stopwatch.GetTimestamp();
                if (s_lastSample == 0 || Stopwatch.GetElapsedTime(s_lastSample, now) >= TimeSpan.FromSeconds(1))
                {
                    var cpu = Orleans.LIFL.Diagnostics.ProcessResources.CpuSeconds();
                    if (s_lastSample != 0)
                    {
                        var wall = Stopwatch.GetElapsedTime(s_lastSample, now).TotalSeconds;
                        s_cpuPercent = Math.Clamp((cpu - s_lastCpu) / wall / Environment.ProcessorCount * 100, 0, 100);
                    }

                    s_lastCpu = cpu;
                    s_lastSample = now;
                }

                return s_cpuPercent;
            }
        }
    }

    public static long MemoryUsageBytes => Environment.WorkingSet;

    public static double CpuSeconds => Orleans.LIFL.Diagnostics.ProcessResources.CpuSeconds();

    public static long PeakMemoryBytes => Orleans.LIFL.Diagnostics.ProcessResources.PeakResidentBytes();

    public static long AvailableMemoryBytes
    {
        get
        {
            var info = GC.GetGCMemoryInfo();
            return Math.Max(0, info.TotalAvailableMemoryBytes - info.MemoryLoadBytes);
        }
    }
}
