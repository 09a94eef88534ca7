// The policyroute extension: .route files get the TextMate grammar (syntaxes/) and the
// language server, `policyroute lsp`, over stdio. The command is a setting, so a venv's
// policyroute (or `uvx --from 'policyroute[lsp]' policyroute lsp`) can be used instead of
// the one on PATH.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function serverCommand() {
  const config = vscode.workspace.getConfiguration("policyroute");
  const [command, ...args] = config.get("server.command", ["policyroute", "lsp"]);
  return { command, args };
}

async function start(context) {
  const { command, args } = serverCommand();
  client = new LanguageClient(
    "policyroute",
    "policyroute",
    { command, args, options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath } },
    {
      documentSelector: [
        { scheme: "file", language: "route" },
        { scheme: "untitled", language: "route" },
      ],
    },
  );
  try {
    await client.start();
  } catch (err) {
    vscode.window.showErrorMessage(
      `policyroute: could not start \`${[command, ...args].join(" ")}\` (${err.message}). ` +
        "Install it with: pip install 'policyroute[lsp]', or set policyroute.server.command.",
    );
  }
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("policyroute.restartServer", async () => {
      if (client) {
        await client.stop();
      }
      await start(context);
    }),
  );
  return start(context);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
