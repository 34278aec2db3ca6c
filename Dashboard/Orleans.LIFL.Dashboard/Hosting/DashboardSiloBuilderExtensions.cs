using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Dashboard;

namespace Orleans.LIFL.Hosting;

public static class DashboardSiloBuilderExtensions
{
    /// <summary>Serves the dashboard from this silo (settings from <c>Lifl:Dashboard</c>, then <paramref name="configure"/>).</summary>
    public static ISiloBuilder AddLiflDashboard(this ISiloBuilder builder, Action<DashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<DashboardOptions>().BindConfiguration("Lifl:Dashboard");
        if (configure is not null)
        {
            options.Configure(configure);
        }

        builder.Services.AddSingleton<DashboardSnapshots>();
        builder.Services.AddSingleton<DashboardServer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DashboardServer>());
        return builder;
    }
}
