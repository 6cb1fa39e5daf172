// Small text helpers shared by the XML (Slicer CLI) and HTML (report) writers.
#pragma once

#include <string>

namespace gw
{
/// Escape text for XML and HTML element content and attribute values: & < > " ' become entities.
std::string EscapeMarkup(const std::string & text);
} // namespace gw
