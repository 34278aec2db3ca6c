using System.Diagnostics;
using Orleans.LIFL.Diagnostics;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

public sealed class ProcessResourcesTests
{
    /// <summary>Another process's CPU time and private memory are read from /proc; a process that is gone reads as 0.</summary>
    [Fact]
    public async Task Another_process_is_read_from_outside_and_a_gone_one_reads_zero()
    {
        using var child = Process.Start(new ProcessStartInfo("sh", ["-c", "read line"])
        {
            RedirectStandardInput = true,
            UseShellExecute = false,
        })!;
        var pid = child.Id;
        Assert.True(ProcessResources.PrivateResidentBytes(pid) > 0, "a live process has private memory");
        Assert.True(ProcessResources.CpuSeconds(Environment.ProcessId) > 0);
        Assert.True(ProcessResources.PrivateResidentBytes(Environment.ProcessId) > ProcessResources.PrivateResidentBytes(pid), "this test host uses more than a shell");

        child.StandardInput.Close();
        await child.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, ProcessResources.PrivateResidentBytes(pid));
        Assert.Equal(0, ProcessResources.CpuSeconds(pid));
    }
}
