"use strict";
// The job page's assignment heat map for mixture jobs: configurations (rows) x member supernets
// (columns); a cell's shade is the balanced p(member | configuration), the ringed cell the member
// the configuration was assigned to, and the cell's tooltip its accuracy estimate W.
window.NasAssignment = (() => {
  const { el } = window.NasFormat;
  const $ = (id) => document.getElementById(id);

  /** Whether this job trains a mixture (and so has an assignment to show). */
  function applies(job) {
    return job?.spec?.search_space?.family === "pooling-mixture-resnet";
  }

  function shade(p) {
    const a = Math.max(0, Math.min(1, p));
    return `rgba(37, 99, 235, ${(0.08 + 0.85 * a).toFixed(3)})`;
  }

  function render(state) {
    const card = $("assignment-card");
    card.hidden = !applies(state.job);
    const data = state.assignment;
    const table = $("assignment");
    if (card.hidden || !data) {
      table.hidden = true;
      $("assignment-summary").textContent = card.hidden ? "" : "no epoch finished yet";
      return;
    }
    const members = [...Array(data.members).keys()];
    const load = members.map((m) => data.assignment.filter((a) => a === m).length);
    $("assignment-summary").textContent =
      `${data.configs.length} configurations × ${data.members} supernets after epoch ${data.epoch}, ` +
      `temperature ${Number(data.temperature).toFixed(1)}; configurations per member: ${load.join(", ")}`;
    const head = el("tr", {}, el("th", {}, "configuration"), ...members.map((m) => el("th", { class: "num" }, `#${m}`)));
    const rows = data.configs.map((label, i) =>
      el(
        "tr",
        { "data-hash": data.arch_hashes[i] },
        el("td", { class: "mono" }, label),
        ...members.map((m) => {
          const p = data.probs[i][m];
          const chosen = data.assignment[i] === m;
          const cell = el(
            "td",
            {
              class: `num heat${chosen ? " chosen" : ""}`,
              style: `background:${shade(p)};color:${p > 0.55 ? "#fff" : "inherit"}`,
              title: `p=${p.toFixed(3)} · W=${Number(data.weights[i][m]).toFixed(3)}${chosen ? " · assigned" : ""}`,
            },
            p.toFixed(2),
          );
          return cell;
        }),
      ),
    );
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    table.dataset.rows = String(rows.length);
    table.hidden = false;
  }

  return { applies, render };
})();
